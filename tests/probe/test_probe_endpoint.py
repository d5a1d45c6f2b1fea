"""End to end against the fake endpoint on 127.0.0.1: verdicts, hints, faults, budget, redaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrace import api
from modeltrace.errors import ProbeError
from modeltrace.probe.client import ClientSettings, ProbeClient
from tests.probe.fake_endpoint import FakeConfig, FakeEndpoint
from tests.probe.trained_tokenizer import FAMILY as TRAINED_SPM
from tests.probe.trained_tokenizer import sentencepiece_model

BUILTIN = ["cl100k", "qwen3", "qwen3.5", "deepseek-v3", "mistral-tekken", "mistral-sentencepiece"]
FAST = {"timeout_s": 2.0, "backoff_s": 0.01, "max_retries": 3}


@pytest.mark.parametrize("family", BUILTIN)
def test_names_every_builtin_family_within_the_default_budget(family: str) -> None:
    with FakeEndpoint(FakeConfig(family=family)) as server:
        report = api.probe(server.url, **FAST)
        assert server.requests_received == report.requests <= 64
    assert report.tokenizer.verdict == family
    assert report.tokenizer.margin >= 10
    assert not report.budget_exhausted


@pytest.mark.parametrize("family", ["gpt2", TRAINED_SPM])
def test_a_tokenizer_outside_the_library_is_unknown(family: str) -> None:
    with FakeEndpoint(FakeConfig(family=family)) as server:
        report = api.probe(server.url, **FAST)
    assert report.tokenizer.verdict == "unknown"
    assert "below the 90% threshold" in report.tokenizer.reason


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("gpt2", "gpt2/vocab.json"),  # vocab.json + merges.txt
        ("gpt2", "gpt2/gpt2.tiktoken"),  # tiktoken rank file, regex inferred from the size
        ("gpt2", "tokenizer.json"),  # Hugging Face tokenizer.json (saved from the GPT-2 files)
        (TRAINED_SPM, "tokenizer.model"),  # SentencePiece, trained by the test
    ],
)
def test_an_added_tokenizer_is_named(name: str, source: str, data_dir: Path, tmp_path: Path) -> None:
    tokenizers = data_dir / "tokenizers"
    if source == "tokenizer.model":
        path = sentencepiece_model()
    elif source == "tokenizer.json":
        from modeltrace.probe.references import load_reference

        gpt2 = load_reference(
            "gpt2", "bpe-vocab-merges", [tokenizers / "gpt2/vocab.json", tokenizers / "gpt2/merges.txt"]
        )
        gpt2.tokenizer.save(str(tmp_path / "tokenizer.json"))  # type: ignore[attr-defined]
        path = tmp_path / "tokenizer.json"
    else:
        path = tokenizers / source
    api.add_tokenizer(name, path)
    with FakeEndpoint(FakeConfig(family=name)) as server:
        report = api.probe(server.url, **FAST)
    assert report.tokenizer.verdict == name
    assert name in report.probe_set.references


def test_leaked_identity_is_reported_verbatim() -> None:
    with FakeEndpoint(FakeConfig(family="qwen3", leak=True)) as server:
        report = api.probe(server.url, **FAST)
    values = {(hint.field, hint.value) for hint in report.hints}
    assert ("model", "kimi-k2p5-rl-0317") in values
    assert ("header:x-model", "kimi-k2p5-rl-0317") in values
    assert ("models.owned_by", "moonshot-internal") in values
    assert ("system_fingerprint", "fp_kimi_k2p5") in values
    assert ("id-prefix", "cmpl-kimi") in values
    assert any(h.field == "error-body" and "kimi-k2p5-rl-0317" in h.value for h in report.hints)
    assert report.model == "kimi-k2p5-rl-0317"


def test_hidden_identity_leaks_nothing_but_the_counts_still_name_the_family() -> None:
    with FakeEndpoint(FakeConfig(family="deepseek-v3", leak=False)) as server:
        report = api.probe(server.url, model="aurora-1", **FAST)
    assert not any("kimi" in hint.value for hint in report.hints)
    assert ("model", "aurora-1") in {(hint.field, hint.value) for hint in report.hints}
    assert report.tokenizer.verdict == "deepseek-v3"


def test_survives_429_500_and_timeouts() -> None:
    slept: list[float] = []
    # One fault per chat request in arrival order ("ok" = none); concurrency 1 keeps the order fixed.
    faults = ["429", "ok", "500", "ok", "slow", "ok", "429"]
    config = FakeConfig(family="mistral-tekken", faults=faults, retry_after="7", slow_seconds=0.6)
    with FakeEndpoint(config) as server:
        report = api.probe(
            server.url, timeout_s=0.3, backoff_s=0.01, max_retries=3, concurrency=1, sleep=slept.append
        )
        assert server.requests_received == report.requests
    assert report.tokenizer.verdict == "mistral-tekken"
    assert slept == [7.0, 0.01, 0.01, 7.0]  # Retry-After honoured, backoff for the 500 and the timeout
    assert report.tokenizer.measured_units == len(report.units)


def test_the_budget_is_hard_and_a_short_budget_still_scores_what_it_measured() -> None:
    with FakeEndpoint(FakeConfig(family="qwen3", faults=["500"] * 200)) as server:
        report = api.probe(server.url, budget=20, **FAST)
        assert server.requests_received == report.requests == 20
    assert report.budget_exhausted and report.tokenizer.verdict == "unknown"

    with FakeEndpoint(FakeConfig(family="qwen3")) as server:
        report = api.probe(server.url, budget=30, **FAST)
        assert server.requests_received <= 30
    assert report.tokenizer.verdict == "qwen3" and report.tokenizer.measured_units == 11


def test_api_key_comes_from_env_and_never_reaches_report_or_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = "sk-test-9f8e7d6c5b4a39281706"
    monkeypatch.setenv("FAKE_PROVIDER_KEY", secret)
    log = tmp_path / "evidence.jsonl"
    with FakeEndpoint(FakeConfig(family="qwen3", api_key=secret, echo_auth=True)) as server:
        report = api.probe(server.url, api_key_env="FAKE_PROVIDER_KEY", evidence_path=log, **FAST)
        assert server.authorizations[0] == f"Bearer {secret}"
    assert report.tokenizer.verdict == "qwen3"
    text = json.dumps(report.to_dict()) + log.read_text(encoding="utf-8")
    assert secret not in text
    assert any(h.field == "header:x-debug-auth" and h.value == "Bearer [REDACTED]" for h in report.hints)
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(records) == report.requests
    assert records[0]["request"]["headers"]["authorization"] == "[REDACTED]"


def test_a_wrong_key_echoed_in_an_error_body_is_redacted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WRONG_KEY", "sk-wrong-1234567890abcdef")
    with FakeEndpoint(FakeConfig(family="qwen3", api_key="sk-right")) as server:
        report = api.probe(server.url, api_key_env="WRONG_KEY", evidence_path=tmp_path / "log.jsonl", **FAST)
    error_bodies = [h.value for h in report.hints if h.field == "error-body"]
    assert error_bodies and all("sk-wrong" not in body and "[REDACTED]" in body for body in error_bodies)
    assert "sk-wrong" not in (tmp_path / "log.jsonl").read_text(encoding="utf-8")
    assert report.tokenizer.verdict == "unknown"


def test_missing_key_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ProbeError, match="NOT_SET_ANYWHERE"):
        api.probe("http://127.0.0.1:9/v1", api_key_env="NOT_SET_ANYWHERE")


def test_tokenize_route_gives_exact_id_evidence() -> None:
    with FakeEndpoint(FakeConfig(family="mistral-tekken", tokenize_route=True)) as server:
        report = api.probe(server.url, **FAST)
    tokenize = report.extra_evidence["tokenize"]
    assert tokenize["available"] and tokenize["matches"] == ["mistral-tekken"]
    assert report.extra_evidence["echo"]["available"] is False


def test_length_estimating_gateway_is_flagged() -> None:
    with FakeEndpoint(FakeConfig(family="qwen3", length_estimate=True)) as server:
        report = api.probe(server.url, **FAST)
    assert report.tokenizer.verdict == "unknown"
    assert report.gateway["suspected"]


def test_url_forms_and_bad_urls() -> None:
    for url in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/chat/completions"):
        assert ProbeClient(url, settings=ClientSettings()).base_url == "http://h:1/v1"
    with pytest.raises(ProbeError, match="http"):
        ProbeClient("ftp://h/v1")
