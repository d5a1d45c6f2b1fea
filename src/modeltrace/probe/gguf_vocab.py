"""Rebuild a tokenizer from a GGUF file's ``tokenizer.ggml.*`` metadata, as llama.cpp would run it.

llama.cpp keeps the whole vocabulary in the model file: token strings, BPE merges or SentencePiece
scores, token types (normal, unknown, control, user-defined, unused, byte) and a pre-tokenizer
name (``tokenizer.ggml.pre``). Two vocabulary types are rebuilt:

* ``gpt2`` (byte-level BPE): a Hugging Face ``tokenizers`` BPE model with the merges, and the
  pre-tokenizer that the ``pre`` name implies. llama.cpp (``src/llama-vocab.cpp``) splits text with
  a *sequence* of regexes, each keeping both its matches and the text between them; that is a
  sequence of ``Split(..., behavior="isolated")`` followed by a byte-level mapping without regex.
  The regexes per name are below (data); an unlisted name is refused, never guessed.
* ``llama`` (SentencePiece): a SentencePiece ``ModelProto`` (BPE type, scores as merge priority,
  byte fallback when the vocabulary has byte tokens, a dummy space prefix unless
  ``tokenizer.ggml.add_space_prefix`` is false).

Control and user-defined tokens become special/added tokens so they never split plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modeltrace.errors import ModeltraceError, TokenizerError
from modeltrace.formats.gguf_file import read_gguf_metadata

_GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"""
_LLAMA3 = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_QWEN2 = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_DEEPSEEK3 = (
    r"""\p{N}{1,3}""",
    r"""[一-龥぀-ゟ゠-ヿ]+""",
    r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"""
    r"""| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
)
_GPT4O = (
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
    r"""|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
    r"""|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

#: ``tokenizer.ggml.pre`` name -> (regex sequence, ignore_merges), after llama.cpp's llama-vocab.cpp.
#: ``ignore_merges``: a word that is itself a token is taken whole (Llama 3 style).
GGUF_PRE_TOKENIZERS: dict[str, tuple[tuple[str, ...], bool]] = {
    **dict.fromkeys(("gpt-2", "gpt2", "mpt", "olmo", "jais", "exaone4", "trillion"), ((_GPT2,), False)),
    **dict.fromkeys(
        ("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"),
        ((r"\p{N}", _GPT2), False),
    ),
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe"), ((_LLAMA3,), True)),
    **dict.fromkeys(("chatglm-bpe", "glm4"), ((_LLAMA3,), False)),
    **dict.fromkeys(("qwen2", "stablelm2", "deepseek-r1-qwen", "megrez", "hunyuan"), ((_QWEN2,), False)),
    "deepseek-v3": (_DEEPSEEK3, False),
    "gpt-4o": ((_GPT4O,), False),
}

_CONTROL, _USER_DEFINED, _BYTE = 3, 4, 6


@dataclass(frozen=True)
class RebuiltTokenizer:
    fmt: str  # "hf-json" or "sentencepiece": how the library loads the written file
    filename: str
    content: bytes
    description: str  # e.g. "GGUF gpt2 vocabulary, 49,152 tokens, pre-tokenizer 'smollm'"


def rebuild_from_gguf(path: Path) -> RebuiltTokenizer:
    """Read the vocabulary of a GGUF file and rebuild the tokenizer llama.cpp would run."""
    try:
        metadata, arrays = read_gguf_metadata(path)
    except ModeltraceError as error:
        raise TokenizerError(f"Cannot read the tokenizer of GGUF file '{path}': {error}") from error
    model = metadata.get("tokenizer.ggml.model")
    tokens = arrays.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens:
        raise TokenizerError(f"GGUF file '{path}' has no tokenizer.ggml.tokens: it carries no vocabulary.")
    types = arrays.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    if len(types) != len(tokens) or not all(isinstance(token, str) for token in tokens):
        raise TokenizerError(
            f"GGUF file '{path}': {len(types)} token types for {len(tokens)} tokens, or tokens that are "
            "not strings; the vocabulary is malformed."
        )
    if not all(type(kind) is int for kind in types):
        raise TokenizerError(f"GGUF file '{path}': tokenizer.ggml.token_type holds non-integers.")
    token_list, type_list = [str(token) for token in tokens], [int(kind) for kind in types]  # type: ignore[call-overload]
    if model == "gpt2":
        return _rebuild_bpe(path, metadata, token_list, type_list, arrays)
    if model == "llama":
        return _rebuild_sentencepiece(path, metadata, token_list, type_list, arrays)
    raise TokenizerError(
        f"GGUF file '{path}' has tokenizer.ggml.model {model!r}; modeltrace rebuilds 'gpt2' (byte-level "
        "BPE) and 'llama' (SentencePiece) vocabularies. Add the model's tokenizer.json instead."
    )


def _rebuild_bpe(
    path: Path,
    metadata: dict[str, object],
    tokens: list[str],
    types: list[int],
    arrays: dict[str, list[object]],
) -> RebuiltTokenizer:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    pre = str(metadata.get("tokenizer.ggml.pre") or "default")
    if pre not in GGUF_PRE_TOKENIZERS:
        raise TokenizerError(
            f"GGUF file '{path}' names pre-tokenizer '{pre}', whose splitting rules modeltrace does not "
            f"know; known: {', '.join(sorted(GGUF_PRE_TOKENIZERS))}. Add the model's tokenizer.json instead."
        )
    regexes, ignore_merges = GGUF_PRE_TOKENIZERS[pre]
    merges_raw = arrays.get("tokenizer.ggml.merges") or []
    merges = []
    for number, merge in enumerate(merges_raw):
        left, _, right = str(merge).partition(" ")
        if not left or not right:
            raise TokenizerError(
                f"GGUF file '{path}': merge {number} {str(merge)[:40]!r} is not 'left right'."
            )
        merges.append((left, right))
    vocab: dict[str, int] = {}
    for index, token in enumerate(tokens):
        vocab.setdefault(token, index)  # a duplicated string keeps its first id, as llama.cpp's lookup does
    try:
        tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges))
    except Exception as error:  # the Rust side raises plain Exceptions on inconsistent merges
        raise TokenizerError(f"GGUF file '{path}': the BPE vocabulary does not load ({error}).") from error
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(regex), behavior="isolated") for regex in regexes]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(
        [
            AddedToken(tokens[i], special=True, normalized=False)
            for i, kind in enumerate(types)
            if kind == _CONTROL
        ]
    )
    tokenizer.add_tokens(
        [AddedToken(tokens[i], normalized=False) for i, kind in enumerate(types) if kind == _USER_DEFINED]
    )
    description = f"GGUF gpt2 vocabulary, {len(tokens):,} tokens, pre-tokenizer '{pre}'"
    return RebuiltTokenizer("hf-json", "tokenizer.json", tokenizer.to_str().encode("utf-8"), description)


def _rebuild_sentencepiece(
    path: Path,
    metadata: dict[str, object],
    tokens: list[str],
    types: list[int],
    arrays: dict[str, list[object]],
) -> RebuiltTokenizer:
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    scores = arrays.get("tokenizer.ggml.scores") or [0.0] * len(tokens)
    if len(scores) != len(tokens) or not all(isinstance(score, float | int) for score in scores):
        raise TokenizerError(f"GGUF file '{path}': {len(scores)} scores for {len(tokens)} tokens.")
    proto = model_pb2.ModelProto()
    proto.trainer_spec.model_type = model_pb2.TrainerSpec.BPE
    proto.trainer_spec.vocab_size = len(tokens)
    proto.trainer_spec.byte_fallback = _BYTE in types
    for field, key in (("unk_id", "unknown"), ("bos_id", "bos"), ("eos_id", "eos"), ("pad_id", "padding")):
        value = metadata.get(f"tokenizer.ggml.{key}_token_id")
        setattr(
            proto.trainer_spec, field, int(value) if isinstance(value, int) and value < len(tokens) else -1
        )
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = bool(metadata.get("tokenizer.ggml.add_space_prefix", True))
    proto.normalizer_spec.remove_extra_whitespaces = False
    proto.normalizer_spec.escape_whitespaces = True
    for token, score, kind in zip(tokens, scores, types, strict=True):
        piece = proto.pieces.add()
        piece.piece = token
        piece.score = float(score)  # type: ignore[arg-type]
        piece.type = kind if kind in (1, 2, 3, 4, 5, 6) else 1
    description = f"GGUF llama (SentencePiece) vocabulary, {len(tokens):,} tokens"
    return RebuiltTokenizer("sentencepiece", "tokenizer.model", proto.SerializeToString(), description)
