"""How scan arguments expand into sources, and which failures are retried (no models are read)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeltrace.api._scan import _exit_code
from modeltrace.errors import CorruptFileError, RemoteError
from modeltrace.scan.retry import is_transient, with_retries
from modeltrace.scan.revision import pin_sources
from modeltrace.scan.sources import expand_sources


def _model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_folders_lists_globs_and_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = tmp_path / "hub"
    a, b = _model(hub / "org-a"), _model(hub / "org-b")
    (hub / "README.md").write_text("models")
    (hub / ".cache").mkdir()
    single = tmp_path / "weights.safetensors"
    single.write_bytes(b"\x00" * 16)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "more.list").write_text("../hub/org-b\nhf://org/repo@v1   # a comment\n")
    (lists / "all.txt").write_text("# everything\n../hub/org-a\n\n@more.list\n")
    monkeypatch.chdir(tmp_path)
    found = expand_sources(["hub", "lists/all.txt", "weights.safetensors", "hub/org-*", "https://x.test/m/"])
    assert found.sources == [str(a), str(b), "hf://org/repo@v1", str(single), "https://x.test/m/"]
    assert {Path(path).name for path, _ in found.ignored} == {"README.md", ".cache"}
    assert found.unusable == []
    assert expand_sources([str(a)]).sources == [str(a)]  # a model folder is one source, not a collection


def test_what_names_nothing_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "loop.txt").write_text("loop.txt\n")
    found = expand_sources(["missing", "empty", "nothing-*", "@loop.txt"])
    reasons = dict(found.unusable)
    assert reasons["missing"] == "no such file or folder"
    assert reasons["nothing-*"] == "the pattern matches nothing"
    assert "holds no model" in reasons[str(tmp_path / "empty")]
    assert any("nest more than" in reason for reason in reasons.values())
    assert found.sources == []


def test_only_transient_failures_are_retried() -> None:
    assert is_transient(RemoteError("u", "cannot connect (refused)"))
    assert is_transient(RemoteError("u", "gave up after 5 attempts: HTTP 503"))
    assert is_transient(ConnectionResetError())
    assert not is_transient(RemoteError("u", "HTTP 404: no such file"))
    assert not is_transient(RemoteError("u", "the server ignores Range"))
    assert not is_transient(CorruptFileError("m.safetensors", "bad header"))
    waits: list[float] = []
    calls = iter([RemoteError("u", "cannot connect (refused)"), RemoteError("u", "gave up after 5 attempts")])

    def flaky() -> str:
        error = next(calls, None)
        if error is not None:
            raise error
        return "read"

    assert with_retries(flaky, retries=2, backoff_s=1.0, sleep=waits.append) == "read"
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0
    with pytest.raises(CorruptFileError):
        with_retries(lambda: (_ for _ in ()).throw(CorruptFileError("m", "bad")), retries=3, backoff_s=0,
                     sleep=waits.append)  # fmt: skip
    assert len(waits) == 2  # a format error is not retried
    with pytest.raises(RemoteError):
        with_retries(lambda: (_ for _ in ()).throw(RemoteError("u", "cannot connect")), retries=1,
                     backoff_s=0, sleep=waits.append)  # fmt: skip


def test_a_commit_is_pinned_without_a_request_and_urls_stay_as_given() -> None:
    commit = "a" * 40
    pins = pin_sources([f"hf://org/repo@{commit}", "https://x.test/m", "hf://org"])
    assert pins[f"hf://org/repo@{commit}"].pinned == f"hf://org/repo@{commit}"
    assert pins["https://x.test/m"].pinned == "https://x.test/m" and pins["https://x.test/m"].error is None
    assert "expected hf://" in (pins["hf://org"].error or "")


def test_exit_code_priority() -> None:
    def row(status: str, code: int) -> dict:
        return {"status": status, "exit_code": code}

    assert _exit_code([row("registered", 0), row("skipped", 0)]) == 0
    assert _exit_code([row("failed", 3), row("registered", 0)]) == 3
    assert _exit_code([row("failed", 3), row("failed", 4)]) == 4
    assert _exit_code([row("failed", 4), row("failed", 1)]) == 1
    assert _exit_code([row("failed", 2)]) == 3


def test_a_bug_in_a_worker_is_reported_with_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from modeltrace.api import _scan_worker
    from modeltrace.scan.outcome import ScanTask

    def broken(task: ScanTask) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(_scan_worker, "_local_arrival", broken)
    result = _scan_worker.fingerprint_source(ScanTask("m", "/nowhere/m", remote=False, namespace=None))
    assert result.arrival is None and result.exit_code == 1 and result.attempts == 1
    assert "internal error (a bug): RuntimeError: boom" in (result.reason or "")
    assert "Traceback" in (result.traceback or "") and "boom" in (result.traceback or "")
