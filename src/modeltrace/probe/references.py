"""Reference tokenizers: load a tokenizer file of any supported format and count tokens with it.

Sits at the bottom of the probe pipeline: the library (:mod:`.library`) decides *which* files to
load, this module knows *how*. Every reference answers the same few questions (how many tokens,
which ids, which token strings, what does one vocabulary entry spell), whatever the file format:

========================  =====================================================================
format                    files
========================  =====================================================================
``tiktoken``              a rank file (``*.tiktoken``, Llama 3's ``tokenizer.model``, Kimi's
                          ``tiktoken.model``) + a regex, optionally + ``tokenizer_config.json``
                          (its special tokens)
``tekken``                Mistral's Tekken JSON (ranks, regex and special-token count in one)
``hf-json``               Hugging Face ``tokenizer.json``
``sentencepiece``         SentencePiece ``.model`` protobuf
``bpe-vocab-merges``      GPT-2 style ``vocab.json`` + ``merges.txt`` (byte-level BPE)
========================  =====================================================================

Files are hostile input: sizes are capped, rank files are parsed line by line with clear errors,
and nothing is unpickled. Loading errors become :class:`~modeltrace.errors.TokenizerError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modeltrace.errors import TokenizerError

#: Largest tokenizer file modeltrace reads (Tekken JSON files are ~20 MB; leave generous room).
MAX_TOKENIZER_FILE_BYTES = 256 * 1024 * 1024

FORMATS = ("tiktoken", "tekken", "hf-json", "sentencepiece", "bpe-vocab-merges")


class ReferenceTokenizer(Protocol):
    """What the probe needs from a tokenizer. Implementations count plain text, never specials."""

    name: str

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without BOS/EOS or chat-template tokens."""
        ...

    def count(self, text: str) -> int: ...

    def vocabulary_size(self) -> int: ...

    def token_text(self, token_id: int) -> str | None:
        """The text one vocabulary entry spells, or None for specials / partial UTF-8 bytes."""
        ...


@dataclass
class TiktokenReference:
    """A byte-level BPE rank table with its pre-tokenisation regex (tiktoken, Tekken)."""

    name: str
    ranks: dict[bytes, int]
    pattern: str
    #: Qwen's loader applies NFC before encoding; mirror it so counts match the real tokenizer.
    normalize_nfc: bool = False
    #: Tekken ids are offset by its special-token block; /tokenize evidence needs the real ids.
    id_offset: int = 0
    #: Special tokens after the ranks (Kimi's reserved block); plain text never encodes to them.
    special_tokens: dict[str, int] | None = None

    def __post_init__(self) -> None:
        import tiktoken

        try:
            self._encoding = tiktoken.Encoding(
                name=f"modeltrace-{self.name}",
                pat_str=self.pattern,
                mergeable_ranks=self.ranks,
                special_tokens=dict(self.special_tokens or {}),
            )
        except Exception as error:  # tiktoken raises ValueError / pyo3 panics on a bad regex
            raise TokenizerError(
                f"Cannot build tokenizer '{self.name}': {error}. Check the --pattern regex."
            ) from error
        self._bytes_by_rank = {rank: token for token, rank in self.ranks.items()}

    def encode(self, text: str) -> list[int]:
        if self.normalize_nfc:
            text = unicodedata.normalize("NFC", text)
        return [token + self.id_offset for token in self._encoding.encode_ordinary(text)]

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def vocabulary_size(self) -> int:
        return len(self.ranks)

    def token_text(self, token_id: int) -> str | None:
        raw = self._bytes_by_rank.get(token_id - self.id_offset)
        return _strict_utf8(raw)


@dataclass
class HuggingFaceReference:
    """A ``tokenizers.Tokenizer`` (from tokenizer.json or vocab.json + merges.txt)."""

    name: str
    tokenizer: object  # tokenizers.Tokenizer; typed loosely to keep the import lazy

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)  # type: ignore[attr-defined]

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def vocabulary_size(self) -> int:
        return int(self.tokenizer.get_vocab_size(with_added_tokens=False))  # type: ignore[attr-defined]

    def token_text(self, token_id: int) -> str | None:
        text = self.tokenizer.decode([token_id], skip_special_tokens=True)  # type: ignore[attr-defined]
        return text if text and "\ufffd" not in text else None


@dataclass
class SentencePieceReference:
    """A SentencePiece model (Llama 1/2, Mistral v1-v7)."""

    name: str
    processor: object  # sentencepiece.SentencePieceProcessor

    def encode(self, text: str) -> list[int]:
        return list(self.processor.encode(text))  # type: ignore[attr-defined]

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def vocabulary_size(self) -> int:
        return int(self.processor.get_piece_size())  # type: ignore[attr-defined]

    def token_text(self, token_id: int) -> str | None:
        sp = self.processor
        if sp.is_control(token_id) or sp.is_unknown(token_id) or sp.is_byte(token_id):  # type: ignore[attr-defined]
            return None
        return str(sp.id_to_piece(token_id)).replace("\u2581", " ")  # type: ignore[attr-defined]


# --- loaders -------------------------------------------------------------------------------------


def load_reference(
    name: str, fmt: str, paths: list[Path], *, pattern: str | None = None, normalize_nfc: bool = False
) -> ReferenceTokenizer:
    """Load one tokenizer. ``paths`` is one file, or [vocab.json, merges.txt] for BPE."""
    if fmt not in FORMATS:
        raise TokenizerError(f"Unknown tokenizer format '{fmt}'. Use one of: {', '.join(FORMATS)}.")
    for path in paths:
        _check_readable(path)
    if fmt == "tiktoken":
        if pattern is None:
            raise TokenizerError(f"Tokenizer '{name}' is a tiktoken rank file and needs a regex pattern.")
        ranks = read_tiktoken_ranks(paths[0])
        specials = tiktoken_special_tokens(paths[1], len(ranks)) if len(paths) > 1 else None
        return TiktokenReference(name, ranks, pattern, normalize_nfc=normalize_nfc, special_tokens=specials)
    if fmt == "tekken":
        return _load_tekken(name, paths[0])
    if fmt == "hf-json":
        return _load_hf_json(name, paths[0])
    if fmt == "sentencepiece":
        return _load_sentencepiece(name, paths[0])
    return _load_vocab_merges(name, paths[0], paths[1])


def read_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """Parse a ``base64-token rank`` file, rejecting anything malformed with the line number."""
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise TokenizerError(f"'{path}' line {number}: expected 'base64-token rank', got {line[:60]!r}.")
        try:
            token = base64.b64decode(fields[0], validate=True)
            rank = int(fields[1])
        except (binascii.Error, ValueError) as error:
            raise TokenizerError(f"'{path}' line {number}: not a tiktoken rank line ({error}).") from error
        ranks[token] = rank
    if not ranks:
        raise TokenizerError(f"'{path}' holds no tiktoken ranks; is it really a tiktoken BPE file?")
    return ranks


def read_tokenizer_config(path: Path) -> dict[str, Any]:
    """A Hugging Face ``tokenizer_config.json`` as a dict (an unreadable one is a TokenizerError)."""
    _check_readable(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TokenizerError(f"'{path}' is not a readable tokenizer_config.json: {error}.") from error
    if not isinstance(config, dict):
        raise TokenizerError(f"'{path}' is not a tokenizer_config.json (expected a JSON object).")
    return config


def tokenizer_class(config: dict[str, Any]) -> str | None:
    """``auto_map.AutoTokenizer`` (the remote-code class, e.g. ``tokenization_kimi.TikTokenTokenizer``)."""
    auto_map = config.get("auto_map")
    auto = auto_map.get("AutoTokenizer") if isinstance(auto_map, dict) else None
    if isinstance(auto, list) and auto and isinstance(auto[0], str):
        return auto[0]
    return auto if isinstance(auto, str) else None


def tiktoken_special_tokens(config_path: Path, base_tokens: int) -> dict[str, int]:
    """Special tokens of a tiktoken tokenizer, laid out as its tokenizer_config.json says.

    Kimi (``tokenization_kimi.TikTokenTokenizer``) gives every id from ``base_tokens`` to
    ``base_tokens + 256 + 2`` a name: the ``added_tokens_decoder`` entry, else
    ``<|reserved_token_{id}|>``. Other configs contribute their ``added_tokens_decoder`` entries.
    """
    from modeltrace.probe.patterns import KIMI_RESERVED_SPECIAL_TOKENS, PRESET_BY_TOKENIZER_CLASS

    config = read_tokenizer_config(config_path)
    decoder = config.get("added_tokens_decoder")
    decoder = decoder if isinstance(decoder, dict) else {}
    named: dict[int, str] = {}
    for key, entry in decoder.items():
        content = entry.get("content") if isinstance(entry, dict) else None
        if str(key).isdecimal() and isinstance(content, str) and int(key) >= base_tokens:
            named[int(key)] = content
    if PRESET_BY_TOKENIZER_CLASS.get(tokenizer_class(config) or "") == "kimi":
        ids = range(base_tokens, base_tokens + KIMI_RESERVED_SPECIAL_TOKENS + 2)
        return {named.get(i, f"<|reserved_token_{i}|>"): i for i in ids}
    return {content: token_id for token_id, content in named.items()}


def _load_tekken(name: str, path: Path) -> TiktokenReference:
    """Mistral Tekken: the first ``default_vocab_size - num_special`` entries are the BPE ranks.

    Mirrors ``mistral_common.tokens.tokenizers.tekken.Tekkenizer``: the file holds more entries
    than the model uses and ids are offset by the special-token block.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        config = data["config"]
        special = int(config["default_num_special_tokens"])
        inner_size = int(config["default_vocab_size"]) - special
        entries = data["vocab"][:inner_size]
        ranks = {base64.b64decode(entry["token_bytes"]): index for index, entry in enumerate(entries)}
        pattern = str(config["pattern"])
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as error:
        raise TokenizerError(f"'{path}' is not a Tekken tokenizer JSON: {error}.") from error
    if len(ranks) != inner_size:
        raise TokenizerError(f"'{path}': expected {inner_size} distinct Tekken tokens, found {len(ranks)}.")
    return TiktokenReference(name, ranks, pattern, id_offset=special)


def _load_hf_json(name: str, path: Path) -> HuggingFaceReference:
    from tokenizers import Tokenizer

    try:
        return HuggingFaceReference(name, Tokenizer.from_file(str(path)))
    except Exception as error:  # the Rust loader raises plain Exception subclasses
        raise TokenizerError(f"'{path}' is not a Hugging Face tokenizer.json: {error}.") from error


def _load_sentencepiece(name: str, path: Path) -> SentencePieceReference:
    import sentencepiece

    try:
        processor = sentencepiece.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError) as error:
        raise TokenizerError(f"'{path}' is not a SentencePiece model: {error}.") from error
    return SentencePieceReference(name, processor)


def _load_vocab_merges(name: str, vocab: Path, merges: Path) -> HuggingFaceReference:
    """GPT-2 style slow files: byte-level BPE with the GPT-2 split regex (``use_regex=True``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    try:
        tokenizer = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
    except Exception as error:
        raise TokenizerError(f"Cannot read BPE files '{vocab}' + '{merges}': {error}.") from error
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return HuggingFaceReference(name, tokenizer)


#: What a folder is searched for, in this order (the first found wins); also the error's list.
FOLDER_LAYOUT = (
    "tokenizer.json",
    "tekken.json",
    "tiktoken.model (+ tokenizer_config.json)",
    "tokenizer.model (SentencePiece, or a tiktoken rank file as Llama 3 ships it)",
    "vocab.json + merges.txt",
    "exactly one *.tiktoken, *.model or *.gguf file",
)
GGUF_MAGIC = b"GGUF"


def detect_format(path: Path) -> tuple[str, list[Path]]:
    """The format of ``path`` (a file or a folder) from names and first bytes, and the files to load.

    Formats are those of :data:`FORMATS` plus ``gguf`` (a model file whose vocabulary the library
    rebuilds, see :mod:`.gguf_vocab`). A tiktoken rank file brings the ``tokenizer_config.json``
    beside it (its special tokens, and the tokenizer class that names the regex).
    """
    if path.is_dir():
        return _detect_in_folder(path)
    if not path.is_file():
        raise TokenizerError(f"Tokenizer file '{path}' does not exist or is not a file.")
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(GGUF_MAGIC):
        return "gguf", [path]  # model files are large; the GGUF header parser bounds its own reads
    _check_readable(path)
    if path.name == "vocab.json":
        merges = path.with_name("merges.txt")
        if not merges.is_file():
            raise TokenizerError(f"'{path}' needs 'merges.txt' beside it (GPT-2 style BPE).")
        return "bpe-vocab-merges", [path, merges]
    if path.suffix == ".json":
        is_tekken = b'"config"' in head and b'"pattern"' in head  # HF tokenizer.json has neither key
        return ("tekken" if is_tekken else "hf-json"), [path]
    if path.suffix == ".tiktoken" or _looks_like_rank_file(head):
        config = path.with_name("tokenizer_config.json")
        return "tiktoken", [path, config] if config.is_file() else [path]
    return "sentencepiece", [path]


def _detect_in_folder(path: Path) -> tuple[str, list[Path]]:
    for name in ("tokenizer.json", "tekken.json", "tiktoken.model", "tokenizer.model"):
        if (path / name).is_file():
            return detect_format(path / name)
    if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        return "bpe-vocab-merges", [path / "vocab.json", path / "merges.txt"]
    singles = sorted(path.glob("*.tiktoken")) + sorted(path.glob("*.model")) + sorted(path.glob("*.gguf"))
    if len(singles) == 1:
        return detect_format(singles[0])
    raise TokenizerError(
        f"Cannot find a tokenizer in folder '{path}'. Looked for: {'; '.join(FOLDER_LAYOUT)}."
        + (f" Found {len(singles)} candidate files; name one of them." if singles else "")
    )


def _looks_like_rank_file(head: bytes) -> bool:
    """tiktoken rank files (including Llama 3 / Kimi ``tiktoken.model``) are ASCII 'b64 int' lines."""
    lines = head.splitlines()[:5]
    if not lines:
        return False
    for line in lines:
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():  # bytes: isdigit is ASCII-only there
            return False
    return True


def _check_readable(path: Path) -> None:
    if not path.is_file():
        raise TokenizerError(f"Tokenizer file '{path}' does not exist or is not a file.")
    size = path.stat().st_size
    if size > MAX_TOKENIZER_FILE_BYTES:
        raise TokenizerError(
            f"Tokenizer file '{path}' is {size:,} bytes, over the {MAX_TOKENIZER_FILE_BYTES:,}-byte limit."
        )


def _strict_utf8(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
