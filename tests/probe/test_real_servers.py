"""Regression tests for the defects found probing a real llama.cpp server (issue 15), each against a
fake that behaves like that server (fake_servers.py): /tokenize dialects, a wrong path, a dead
endpoint, response-id nonces, and identity hints that contradict the tokenizer verdict."""

from __future__ import annotations

import json
import random
import socket
import string
import time
import uuid

import pytest

from modeltrace import api
from modeltrace.cli import main
from modeltrace.probe.hints import Hint, id_prefix, looks_random
from modeltrace.probe.identity import contradictions, family_of
from tests.probe.fake_servers import ServerFake

FAST = {"timeout_s": 2.0, "backoff_s": 0.01, "max_retries": 3}


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, " ".join(captured.err.split())


# --- 1. /tokenize in each server's dialect --------------------------------------------------------


def test_llama_cpp_tokenize_reads_content_and_an_empty_answer_is_no_evidence() -> None:
    with ServerFake("llama.cpp", family="qwen3", alias="Qwen2.5-0.5B-Instruct") as server:
        report = api.probe(server.url, **FAST)
    tokenize = report.extra_evidence["tokenize"]
    # The vLLM-style request came first and got llama.cpp's {"tokens": []}: not "length 0".
    assert tokenize["tried"][0].endswith("(prompt): 200, empty")
    assert tokenize["available"] and tokenize["field"] == "content"
    assert tokenize["route"] == server.origin + "/tokenize"
    assert tokenize["matches"] == ["qwen3"] and report.tokenizer.verdict == "qwen3"


@pytest.mark.parametrize(
    ("dialect", "paths", "route"),
    [("vllm", None, "/tokenize"), ("sglang", ("/v1/tokenize",), "/v1/tokenize")],
)
def test_vllm_and_sglang_tokenize_read_prompt(
    dialect: str, paths: tuple[str, ...] | None, route: str
) -> None:
    with ServerFake(dialect, family="deepseek-v3", tokenize_paths=paths) as server:
        report = api.probe(server.url, **FAST)
    tokenize = report.extra_evidence["tokenize"]
    assert tokenize["available"] and tokenize["field"] == "prompt"
    assert tokenize["route"] == server.origin + route and tokenize["matches"] == ["deepseek-v3"]


# --- 2. and 3. a wrong path and a dead endpoint exit 4 within seconds -----------------------------


def test_a_wrong_path_answering_only_404_exits_4_naming_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    with ServerFake("llama.cpp") as server:
        started = time.monotonic()
        code, out, err = _exit(["probe", server.origin + "/wrong/v1", "--json"], capsys)
        elapsed = time.monotonic() - started
        sent = server.requests_received
    assert code == 4 and out == ""
    assert f"{server.origin}/wrong/v1/chat/completions" in err and "404" in err
    assert elapsed < 5 and sent <= 4


def test_a_dead_endpoint_gives_up_after_a_few_refused_connections(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe_socket:  # a port that was just free: connections are refused
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    started = time.monotonic()
    code, out, err = _exit(["probe", f"http://127.0.0.1:{port}/v1"], capsys)  # default backoff (1 s, 2 s)
    assert code == 4 and out == ""
    assert f"No response from http://127.0.0.1:{port}/v1: 3 attempts in a row failed" in err
    assert time.monotonic() - started < 8


# --- 4. response-id nonces are redacted by shape -----------------------------------------------


def test_response_id_nonces_never_reach_the_hints_even_without_digits() -> None:
    # llama.cpp draws its 32 characters from [0-9A-Za-z]; force the digit-free ids the issue saw.
    with ServerFake("llama.cpp", alias="SmolLM2", id_alphabet=string.ascii_letters) as server:
        report = api.probe(server.url, budget=12, **FAST)
        nonces = list(server.response_ids)
    assert nonces and not any(char.isdigit() for nonce in nonces for char in nonce)
    text = json.dumps([hint.to_dict() for hint in report.hints])
    assert not any(nonce in text for nonce in nonces)
    assert ("id-prefix", "chatcmpl") in {(hint.field, hint.value) for hint in report.hints}


def test_random_parts_are_recognised_by_shape_and_words_are_kept() -> None:
    rng = random.Random(15)
    base62 = string.ascii_letters + string.digits
    nonces = [
        *("".join(rng.choice(base62) for _ in range(32)) for _ in range(200)),  # llama.cpp
        *("".join(rng.choice(string.ascii_letters) for _ in range(32)) for _ in range(200)),
        *(uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(50)),  # vLLM / SGLang
        *("".join(rng.choice(string.ascii_lowercase) for _ in range(24)) for _ in range(50)),
    ]
    assert all(looks_random(nonce) for nonce in nonces)
    words = ["chatcmpl", "cmpl", "kimi", "completion", "internationalization", "Instruct", "msg", "fp"]
    assert not any(looks_random(word) for word in words)
    assert id_prefix("cmpl-kimi-" + nonces[0]) == "cmpl-kimi"
    assert id_prefix(f"gen-{nonces[1]}-kimi") == "gen-*-kimi"
    assert id_prefix("chatcmpl-123") == "chatcmpl"  # Ollama's short numeric ids


# --- 5. identity hints that contradict the tokenizer verdict -----------------------------------


def test_a_served_id_contradicting_the_tokenizer_is_flagged_first(capsys: pytest.CaptureFixture[str]) -> None:
    with ServerFake("llama.cpp", family="qwen3", alias="kimi-k2p5-rl-0317") as server:
        code, out, _ = _exit(["probe", server.url, "--timeout", "2"], capsys)
        _, json_out, _ = _exit(["probe", server.url, "--timeout", "2", "--json"], capsys)
    assert code == 0
    assert "Contradiction:" in out and out.index("Contradiction:") < out.index("Identity hints")
    assert "kimi" in out.split("Contradiction:")[1].splitlines()[0]
    flagged = json.loads(json_out)["contradictions"]
    assert {row["hint"]["field"] for row in flagged} >= {"model", "models.id"}
    assert all(row["hint_family"] == "kimi" and row["tokenizer_verdict"] == "qwen3" for row in flagged)


def test_consistent_hints_and_serving_stack_names_are_not_flagged() -> None:
    hints = [
        Hint("GET /v1/models", "models.id", "Qwen2.5-7B-Instruct-Q4_K_M.gguf", True),
        Hint("GET /v1/models", "models.owned_by", "llamacpp", True),  # llama.cpp, the stack
        Hint("chat", "system_fingerprint", "b4589-1a2b3c4d", True),
        Hint("chat", "header:server", "ollama/0.6", True),
    ]
    assert contradictions(hints, "qwen3") == []
    assert contradictions(hints, "unknown") == []
    assert contradictions([Hint("chat", "model", "kimi-k2p5-rl-0317", True)], "kimi-k2.5") == []
    assert family_of("Qwen3.5-27B").family == "qwen3.5"  # type: ignore[union-attr]
    assert contradictions([Hint("chat", "model", "Qwen3.5-27B", True)], "qwen3")
