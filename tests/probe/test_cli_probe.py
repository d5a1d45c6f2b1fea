"""The probe and tokenizers commands: JSON keys others rely on, human table, library management."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrace.cli import main
from tests.probe.fake_endpoint import FakeConfig, FakeEndpoint
from tests.probe.trained_tokenizer import sentencepiece_model


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code in (0, None)
    return capsys.readouterr().out


def test_probe_json_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeEndpoint(FakeConfig(family="qwen3.5", leak=True)) as server:
        out = _run(["probe", server.url, "--json", "--timeout", "2"], capsys)
    data = json.loads(out)
    assert set(data["tokenizer"]) >= {"verdict", "margin", "candidates"}
    assert data["tokenizer"]["verdict"] == "qwen3.5"
    assert isinstance(data["requests"], int) and data["requests"] <= 64
    assert any(h["value"] == "kimi-k2p5-rl-0317" for h in data["hints"])
    assert len(data["units"]) == data["tokenizer"]["measured_units"]
    assert Path(data["evidence_log"]).is_file()


def test_probe_human_report_shows_units_and_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeEndpoint(FakeConfig(family="cl100k")) as server:
        out = _run(["probe", server.url, "--timeout", "2"], capsys)
    assert "Per-unit evidence" in out and "Tokenizer verdict:" in out and "cl100k" in out and "margin" in out


def test_tokenizers_add_list_remove(capsys: pytest.CaptureFixture[str]) -> None:
    _run(["tokenizers", "add", "my-spm", str(sentencepiece_model())], capsys)
    names = [row["name"] for row in json.loads(_run(["tokenizers", "list", "--json"], capsys))]
    assert names[-1] == "my-spm" and "qwen3" in names
    _run(["tokenizers", "remove", "my-spm"], capsys)
    assert "my-spm" not in _run(["tokenizers", "list"], capsys)


def test_tokenizers_add_rejects_duplicates_and_unknown_rank_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ranks = tmp_path / "odd.tiktoken"
    ranks.write_text("YQ== 0\nYg== 1\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["tokenizers", "add", "odd", str(ranks)])
    assert exit_info.value.code == 3 and "--pattern" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["tokenizers", "add", "qwen3", str(ranks), "--pattern", "gpt2"])
    assert "already in the library" in capsys.readouterr().err


def test_unreachable_endpoint_is_an_error_not_an_unknown_tokenizer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    # A port that was just free: nothing listens there, so every connection is refused.
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    with pytest.raises(SystemExit) as exit_info:
        main(["probe", f"http://127.0.0.1:{port}/v1", "--budget", "3", "--timeout", "1", "--json"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 4
    assert "No response" in " ".join(captured.err.split())
    assert captured.out == ""
