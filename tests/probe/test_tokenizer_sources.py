"""`tokenizers add` from any source: GGUF vocabularies rebuilt, Hugging Face folders, hf:// downloads
(against a fake Hub), and the Kimi family's tiktoken.model format. Tokenizers are built in the test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modeltrace import api
from modeltrace.cli import main
from modeltrace.errors import TokenizerError
from modeltrace.paths import modeltrace_home
from modeltrace.probe import library, patterns
from modeltrace.probe.references import detect_format
from tests.probe.fake_servers import ServerFake
from tests.probe.tokenizer_builders import (
    KIMI_PAT_STR,
    MULTILINGUAL_TEST_SET,
    FakeHub,
    mergeable_ranks,
    train_smollm_style,
    write_gguf_bpe,
    write_gguf_sentencepiece,
    write_kimi_style,
)

FAST = {"timeout_s": 2.0, "backoff_s": 0.01, "max_retries": 3}


def _loaded(name: str):  # type: ignore[no-untyped-def]
    spec = next(spec for spec in library.library_specs(modeltrace_home()) if spec.name == name)
    return library.load(spec)


def test_a_smollm_style_gguf_round_trips_and_the_probe_names_it(tmp_path: Path) -> None:
    original = train_smollm_style()
    gguf_file = write_gguf_bpe(original, tmp_path / "SmolLM2-test-Q4_1.gguf", pre="smollm")
    added = api.add_tokenizer("smollm2-test", str(gguf_file))
    assert added["format"] == "hf-json" and "pre-tokenizer 'smollm'" in str(added["covers"])
    rebuilt = _loaded("smollm2-test")
    for text in MULTILINGUAL_TEST_SET:
        assert rebuilt.encode(text) == original.encode(text, add_special_tokens=False).ids, text
    encoder = lambda text: original.encode(text, add_special_tokens=False).ids  # noqa: E731
    with ServerFake("llama.cpp", alias="SmolLM2-135M-Instruct-Q4_1.gguf", encoder=encoder) as server:
        report = api.probe(server.url, **FAST)
    assert report.tokenizer.verdict == "smollm2-test" and report.tokenizer.margin >= 10
    assert report.extra_evidence["tokenize"]["matches"] == ["smollm2-test"]


def test_the_pre_tokenizer_name_matters(tmp_path: Path) -> None:
    """A GPT-2-split vocabulary round-trips under 'gpt2'; under 'smollm' its digit runs split apart."""
    original = train_smollm_style(single_digits=False)
    api.add_tokenizer("as-gpt2", str(write_gguf_bpe(original, tmp_path / "a.gguf", pre="gpt2")))
    api.add_tokenizer("as-smollm", str(write_gguf_bpe(original, tmp_path / "b.gguf", pre="smollm")))
    for text in MULTILINGUAL_TEST_SET:
        assert _loaded("as-gpt2").encode(text) == original.encode(text).ids, text
    assert _loaded("as-gpt2").count(" 12345") < _loaded("as-smollm").count(" 12345") == 6
    with pytest.raises(TokenizerError, match=r"pre-tokenizer 'no-such-pre'.*smollm"):
        api.add_tokenizer("odd", str(write_gguf_bpe(original, tmp_path / "c.gguf", pre="no-such-pre")))


def test_a_sentencepiece_llama_gguf_round_trips(tmp_path: Path) -> None:
    import sentencepiece

    from tests.probe.tokenizer_builders import CORPUS

    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20), model_prefix=str(tmp_path / "sp"), vocab_size=800,
        model_type="bpe", byte_fallback=True, character_coverage=1.0, minloglevel=2,
        # as Llama 2's tokenizer.model: no NFKC, whitespace kept (llama.cpp normalises nothing)
        normalization_rule_name="identity", remove_extra_whitespaces=False,
    )  # fmt: skip
    original = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "sp.model"))
    api.add_tokenizer(
        "llama-sp-test", str(write_gguf_sentencepiece(tmp_path / "sp.model", tmp_path / "sp.gguf"))
    )
    rebuilt = _loaded("llama-sp-test")
    for text in MULTILINGUAL_TEST_SET:
        assert rebuilt.encode(text) == original.encode(text), text


def test_folders_are_searched_in_order_and_an_unknown_one_lists_what_was_looked_for(tmp_path: Path) -> None:
    import mistral_common

    data = Path(mistral_common.__file__).parent / "data"
    tekken = tmp_path / "tekken"
    tekken.mkdir()
    shutil.copyfile(data / "tekken_240911.json", tekken / "tekken.json")
    assert detect_format(tekken)[0] == "tekken"
    sentencepiece_folder = tmp_path / "sp"
    sentencepiece_folder.mkdir()
    shutil.copyfile(data / "tokenizer.model.v1", sentencepiece_folder / "tokenizer.model")
    assert detect_format(sentencepiece_folder)[0] == "sentencepiece"
    bpe = tmp_path / "bpe"
    bpe.mkdir()
    train_smollm_style(vocab_size=400).model.save(str(bpe))
    assert detect_format(bpe) == ("bpe-vocab-merges", [bpe / "vocab.json", bpe / "merges.txt"])
    (bpe / "tokenizer.json").write_text(train_smollm_style(vocab_size=400).to_str(), encoding="utf-8")
    assert detect_format(bpe)[0] == "hf-json"  # tokenizer.json wins over the slow files
    kimi = write_kimi_style(mergeable_ranks(train_smollm_style(vocab_size=400)), tmp_path / "kimi")
    assert detect_format(kimi) == ("tiktoken", [kimi / "tiktoken.model", kimi / "tokenizer_config.json"])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(TokenizerError) as error:
        detect_format(empty)
    for looked_for in (
        "tokenizer.json",
        "tekken.json",
        "tiktoken.model",
        "tokenizer.model",
        "merges.txt",
        "gguf",
    ):
        assert looked_for in str(error.value)


def test_kimi_format_is_read_exactly_and_told_apart_from_its_neighbours(tmp_path: Path) -> None:
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    assert patterns.KIMI == KIMI_PAT_STR
    folder = write_kimi_style(mergeable_ranks(train_smollm_style(vocab_size=1500)), tmp_path / "Kimi-test")
    added = api.add_tokenizer("kimi-test", str(folder))  # the class in tokenizer_config.json names the regex
    assert added["format"] == "tiktoken"
    kimi = _loaded("kimi-test")
    # As tokenization_kimi.TikTokenTokenizer builds it: tiktoken, the pattern, 256 + 2 reserved specials.
    ranks = load_tiktoken_bpe(str(folder / "tiktoken.model"))
    specials = json.loads((folder / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    names = {int(k): v["content"] for k, v in specials.items()}
    reserved = range(len(ranks), len(ranks) + 256 + 2)
    reference = tiktoken.Encoding(
        "kimi", pat_str=KIMI_PAT_STR, mergeable_ranks=ranks,
        special_tokens={names.get(i, f"<|reserved_token_{i}|>"): i for i in reserved},
    )  # fmt: skip
    for text in MULTILINGUAL_TEST_SET:
        assert kimi.encode(text) == reference.encode(text, allowed_special="all"), text
    assert kimi._encoding.n_vocab == len(ranks) + 258  # type: ignore[attr-defined]
    # Han runs are split apart from other letters: "abc中文" is "abc" + "中文".
    assert kimi.count("abc中文") == kimi.count("abc") + kimi.count("中文")

    references = api.probe_set().references
    assert {"kimi-test", "cl100k", "qwen3", "deepseek-v3"} <= set(references)
    units = api.probe_set().units
    for neighbour in ("cl100k", "qwen3", "deepseek-v3"):
        differing = sum(unit.expected["kimi-test"] != unit.expected[neighbour] for unit in units)
        assert differing >= 12, neighbour
    encoder = lambda text: reference.encode(text, allowed_special="all")  # noqa: E731
    with ServerFake("vllm", alias="aurora-1", encoder=encoder) as server:
        report = api.probe(server.url, **FAST)
    assert report.tokenizer.verdict == "kimi-test" and report.tokenizer.margin >= 10
    with ServerFake("vllm", family="qwen3", alias="kimi-k2p5") as server:
        report = api.probe(server.url, **FAST)
    assert report.tokenizer.verdict == "qwen3" and report.contradictions


def test_tokenizers_add_kimi_from_the_hub_downloads_only_tokenizer_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_kimi_style(mergeable_ranks(train_smollm_style(vocab_size=400)), tmp_path / "repo")
    files = {name: (folder / name).read_bytes() for name in ("tiktoken.model", "tokenizer_config.json")}
    files["model-00001-of-00064.safetensors"] = b"weights never requested"
    with FakeHub({"moonshotai/Kimi-K2.5": files}, token="hf_secret") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
        with pytest.raises(SystemExit) as exit_info:
            main(["tokenizers", "add", "kimi-k2.5", "hf://moonshotai/Kimi-K2.5", "--json"])
        assert exit_info.value.code in (0, None)
        requested = [path for path, _ in hub.requests]
        assert all(auth == "Bearer hf_secret" for _, auth in hub.requests)
        monkeypatch.delenv("HF_TOKEN")
        with pytest.raises(SystemExit) as exit_info:
            main(["tokenizers", "add", "again", "hf://moonshotai/Kimi-K2.5@main"])
        assert exit_info.value.code == 3 and "HF_TOKEN" in " ".join(capsys.readouterr().err.split())
    assert requested[0] == "/moonshotai/Kimi-K2.5/resolve/main/tokenizer_config.json"
    assert "/moonshotai/Kimi-K2.5/resolve/main/tiktoken.model" in requested
    assert not any("safetensors" in path for path in requested)
    spec = next(s for s in library.library_specs(modeltrace_home()) if s.name == "kimi-k2.5")
    assert spec.pattern == patterns.KIMI and [f.name for f in spec.files] == [
        "tiktoken.model",
        "tokenizer_config.json",
    ]


def test_a_hub_repo_without_tokenizer_files_lists_what_was_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeHub({"org/weights-only": {"config.json": b"{}"}}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        with pytest.raises(
            TokenizerError, match=r"tokenizer.json: 404.*tiktoken.model: 404.*vocab.json: 404"
        ) as error:
            api.add_tokenizer("nothing", "hf://org/weights-only@v1.0")
    assert "revision v1.0" in str(error.value)
    with pytest.raises(TokenizerError, match="hf://ORG/REPO"):
        api.add_tokenizer("bad", "hf://only-one-part")


def test_a_gguf_without_a_usable_vocabulary_is_a_clear_error(tmp_path: Path) -> None:
    import gguf

    def write(path: Path, model: str | None, tokens: list[str] | None) -> Path:
        writer = gguf.GGUFWriter(str(path), arch="llama")
        if model:
            writer.add_tokenizer_model(model)
        if tokens:
            writer.add_token_list(tokens)
            writer.add_token_types([1] * (len(tokens) - 1))  # one type short
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path

    with pytest.raises(TokenizerError, match=r"no tokenizer\.ggml\.tokens"):
        api.add_tokenizer("none", str(write(tmp_path / "a.gguf", None, None)))
    with pytest.raises(TokenizerError, match="malformed"):
        api.add_tokenizer("short", str(write(tmp_path / "b.gguf", "gpt2", ["a", "b"])))
    (tmp_path / "c.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")  # truncated header
    with pytest.raises(TokenizerError, match=r"c\.gguf"):
        api.add_tokenizer("cut", str(tmp_path / "c.gguf"))
