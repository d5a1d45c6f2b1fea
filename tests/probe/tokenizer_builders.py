"""Small tokenizers built in the tests, written in the formats real models ship, plus a fake Hub.

* :func:`train_smollm_style` trains a byte-level BPE with SmolLM2's pre-tokenizer (single digits,
  then GPT-2 byte-level splitting) with Hugging Face ``tokenizers``.
* :func:`write_gguf_bpe` / :func:`write_gguf_sentencepiece` write its vocabulary the way llama.cpp's
  ``convert_hf_to_gguf.py`` does, with the ``gguf`` package: token strings in id order, merges as
  ``"left right"``, token types (control for added specials), the ``tokenizer.ggml.pre`` name.
* :func:`write_kimi_style` writes ``tiktoken.model`` (base64 token, rank) and a
  ``tokenizer_config.json`` naming ``tokenization_kimi.TikTokenTokenizer`` with Kimi's
  ``added_tokens_decoder`` layout (specials right after the ranks), as moonshotai/Kimi-K2 ships.
* :class:`FakeHub` serves ``/ORG/REPO/resolve/REV/FILE`` from memory and records every request.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

#: Kimi's regex as tokenization_kimi.py writes it (moonshotai/Kimi-K2), copied here independently of
#: modeltrace's constant so the test checks that constant.
KIMI_PAT_STR = "|".join(
    [
        r"""[\p{Han}]+""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's 2026 and we'll see 12345 results.",
    "Modeltrace proves where a model came from; tokenizers leave fingerprints in every count.",
    "中华人民共和国成立于1949年。我们在北京学习人工智能和自然语言处理。",
    "東京は日本の首都です。ひらがなとカタカナと漢字。",
    "हिन्दी भारत की राजभाषा है। नमस्ते दुनिया।",
    "Привет, мир! Это проверка токенизатора на русском языке.",
    "Ünïcödé façade naïve café résumé Straße größer.",
    "مرحبا بالعالم، هذه تجربة للغة العربية.",
    "def main(argv: list[str]) -> int:\n    return len(argv)  # 🙏🏻 emoji 🚀✨",
    "   leading spaces, trailing spaces   \n\n\ttabs\tand\nnewlines\r\n",
]
MULTILINGUAL_TEST_SET = [
    "Hello, world! It's 3.14159 and 1000000 tokens later.",
    "中华人民共和国 and English mixed: abc中文def",
    "日本語のテキストとEnglish words 123",
    "हिन्दी में लिखा गया वाक्य",
    "Добрый день! Как дела?",
    "naïve café — “quotes” and ‘apostrophes’ don't can't",
    "emoji 🙏🏻🚀✨ and symbols ∑∫√ ≠ ≤",
    "code: for i in range(10):\n    print(i ** 2)\n",
    "multiple   spaces\t\ttabs\n\n\nnewlines",
    "العربية من اليمين إلى اليسار",
]


def train_smollm_style(vocab_size: int = 1200, *, single_digits: bool = True):  # type: ignore[no-untyped-def]
    """A byte-level BPE with SmolLM2's pre-tokenizer and ChatML specials (a tokenizers.Tokenizer).

    ``single_digits=False`` gives plain GPT-2 splitting (digit runs stay together).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if single_digits
        else byte_level
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 3, trainer=trainer)
    return tokenizer


def write_gguf_bpe(tokenizer, path: Path, pre: str = "smollm") -> Path:  # type: ignore[no-untyped-def]
    """A GGUF file (no tensors) holding ``tokenizer``'s vocabulary as convert_hf_to_gguf.py writes it."""
    import gguf

    data = json.loads(tokenizer.to_str())
    vocab = data["model"]["vocab"]
    merges = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    tokens = [""] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    specials = {entry["id"] for entry in data["added_tokens"] if entry["special"]}
    types = [gguf.TokenType.CONTROL if i in specials else gguf.TokenType.NORMAL for i in range(len(tokens))]
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    _finish(writer)
    return path


def write_gguf_sentencepiece(model_file: Path, path: Path) -> Path:
    """A GGUF file holding a SentencePiece model's pieces, scores and types (tokenizer.ggml.model 'llama')."""
    import gguf
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    scores = [processor.get_score(i) for i in range(processor.get_piece_size())]
    types = []
    for i in range(processor.get_piece_size()):
        if processor.is_unknown(i):
            types.append(gguf.TokenType.UNKNOWN)
        elif processor.is_control(i):
            types.append(gguf.TokenType.CONTROL)
        elif processor.is_byte(i):
            types.append(gguf.TokenType.BYTE)
        else:
            types.append(gguf.TokenType.NORMAL)
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(processor.unk_id())
    writer.add_bos_token_id(processor.bos_id())
    writer.add_eos_token_id(processor.eos_id())
    _finish(writer)
    return path


def _finish(writer) -> None:  # type: ignore[no-untyped-def]
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def mergeable_ranks(tokenizer) -> dict[bytes, int]:  # type: ignore[no-untyped-def]
    """A trained byte-level BPE as tiktoken ranks: the 256 bytes, then each merge's result in order."""
    byte_of = {char: byte for byte, char in enumerate(_bytes_to_unicode())}
    data = json.loads(tokenizer.to_str())
    ranks = {bytes([byte]): byte for byte in range(256)}
    for merge in data["model"]["merges"]:
        left, right = merge if isinstance(merge, list) else merge.split(" ", 1)
        token = bytes(byte_of[char] for char in left + right)
        ranks.setdefault(token, len(ranks))
    return ranks


def _bytes_to_unicode() -> list[str]:
    """GPT-2's byte -> printable character table, indexed by byte value."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return [table[byte] for byte in range(256)]


def write_kimi_style(ranks: dict[bytes, int], folder: Path) -> Path:
    """``tiktoken.model`` + ``tokenizer_config.json`` laid out as moonshotai/Kimi-K2 ships them."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{base64.b64encode(token).decode()} {rank}"
        for token, rank in sorted(ranks.items(), key=lambda x: x[1])
    ]
    (folder / "tiktoken.model").write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = len(ranks)
    names = ["[BOS]", "[EOS]", "<|im_end|>", "<|im_user|>", "<|im_assistant|>", "<|start_header_id|>"]
    decoder = {str(base + i): {"content": name, "special": True} for i, name in enumerate(names)}
    config = {
        "added_tokens_decoder": decoder,
        "auto_map": {"AutoTokenizer": ["tokenization_kimi.TikTokenTokenizer", None]},
        "tokenizer_class": "TikTokenTokenizer",
        "bos_token": "[BOS]",
        "eos_token": "[EOS]",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


class FakeHub:
    """``with FakeHub({"org/repo": {"file": bytes}}) as hub: hub.endpoint``; serves ``resolve`` URLs."""

    def __init__(self, repos: dict[str, dict[str, bytes]], token: str | None = None) -> None:
        self.repos = repos
        self.token = token
        self.requests: list[tuple[str, str | None]] = []  # (path, authorization)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                hub.requests.append((self.path, self.headers.get("authorization")))
                status, body = hub.answer(self.path, self.headers.get("authorization"))
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, path: str, authorization: str | None) -> tuple[int, bytes]:
        parts = path.lstrip("/").split("/")
        if len(parts) != 5 or parts[2] != "resolve":
            return 404, b"Entry not found"
        if self.token is not None and authorization != f"Bearer {self.token}":
            return 401, b"Access to this repository is restricted"
        files = self.repos.get(f"{parts[0]}/{parts[1]}", {})
        if parts[4] not in files:
            return 404, b"Entry not found"
        return 200, files[parts[4]]

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
