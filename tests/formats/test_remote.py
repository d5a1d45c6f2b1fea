"""Remote model files: byte ranges over HTTP, retries, and refusals (issue 14, item 1)."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modeltrace.errors import RemoteError
from modeltrace.formats.remote import (
    HubRepo,
    RemoteFile,
    RemoteSession,
    RetryPolicy,
    coalesce,
)
from tests.formats.range_server import Faults, serve_folder

DATA = bytes(range(256)) * 64  # 16 KiB with a recognisable pattern


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "blob.bin").write_bytes(DATA)
    return tmp_path


def session(waits: list[float] | None = None, attempts: int = 4) -> RemoteSession:
    recorder = waits if waits is not None else []
    return RemoteSession(timeout_s=5, retry=RetryPolicy(attempts=attempts, sleep=recorder.append))


def test_ranges_come_back_exactly_and_are_counted(folder: Path) -> None:
    with serve_folder(folder) as (url, faults):
        remote = session()
        handle = RemoteFile(f"{url}/blob.bin", remote)
        assert handle.size == len(DATA)
        assert handle.read(1000, 300) == DATA[1000:1300]
        assert handle.read(len(DATA) - 5, 5) == DATA[-5:]
        assert handle.bytes_read == 305
        assert remote.stats.requests == 3  # size probe + two ranges
        assert remote.stats.bytes_transferred == 1 + 305
        assert [line.split()[-1] for line in faults.requests] == [
            "bytes=0-0",
            "bytes=1000-1299",
            "bytes=16379-16383",
        ]
        with pytest.raises(RemoteError, match="outside the file"):
            handle.read(len(DATA) - 1, 2)


def test_nearby_ranges_coalesce_into_one_request(folder: Path) -> None:
    with serve_folder(folder) as (url, faults):
        remote = session()
        handle = RemoteFile(f"{url}/blob.bin", remote, size=len(DATA))
        wanted = [(4000, 10), (100, 20), (150, 5), (9000, 1)]
        got = handle.read_ranges(wanted, max_gap=64)
        assert got == [DATA[o : o + n] for o, n in wanted]
        assert len(faults.requests) == 3  # (100..155), (4000..4010), (9000)


def test_the_size_probe_brings_the_first_bytes_and_reads_inside_them_are_free(folder: Path) -> None:
    with serve_folder(folder) as (url, faults):
        remote = session()
        size, prefix = remote.probe(f"{url}/blob.bin", 4096)
        assert (size, prefix) == (len(DATA), DATA[:4096])
        handle = RemoteFile(f"{url}/blob.bin", remote, size, prefix)
        assert handle.read(0, 8) == DATA[:8] and handle.read(100, 3000) == DATA[100:3100]
        assert handle.read(4000, 200) == DATA[4000:4200]  # only the part past the prefix is fetched
        assert [line.split()[-1] for line in faults.requests] == ["bytes=0-4095", "bytes=4096-4199"]
        assert handle.bytes_read == 8 + 3000 + 200  # what the reader asked for, as from a local file
        # A probe longer than the file: the server clamps the range to the file (RFC 9110 14.1.1).
        assert remote.probe(f"{url}/blob.bin", 1 << 20) == (len(DATA), DATA)


def test_coalesce_groups() -> None:
    assert coalesce([(0, 10), (15, 5), (100, 1)], max_gap=5) == [(0, 20, [0, 1]), (100, 101, [2])]
    assert coalesce([(50, 10), (0, 100)], max_gap=0) == [(0, 100, [1, 0])]


def test_a_server_that_ignores_range_is_refused_without_downloading(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (8 << 20))
    with serve_folder(tmp_path, Faults(ignore_range=True)) as (url, _):
        remote = session()
        with pytest.raises(RemoteError, match="ignores Range"):
            RemoteFile(f"{url}/big.bin", remote)
        with pytest.raises(RemoteError, match="ignores Range"):
            RemoteFile(f"{url}/big.bin", remote, size=8 << 20).read(0, 10)
        assert remote.stats.bytes_transferred < 1 << 20


def test_429_then_success_honours_retry_after(folder: Path) -> None:
    waits: list[float] = []
    with serve_folder(folder, Faults(too_many=2, retry_after="3")) as (url, _):
        remote = session(waits)
        handle = RemoteFile(f"{url}/blob.bin", remote)
        assert handle.read(10, 10) == DATA[10:20]
    assert waits == [3.0, 3.0]
    assert remote.stats.retries == 2


def test_a_retry_after_too_long_is_reported_not_waited(folder: Path) -> None:
    waits: list[float] = []
    faults = Faults(too_many=1, retry_after="86400")
    with serve_folder(folder, faults) as (url, _), pytest.raises(RemoteError, match="Retry-After 86400"):
        RemoteFile(f"{url}/blob.bin", session(waits))
    assert waits == []


def test_a_connection_dropped_mid_body_is_retried(folder: Path) -> None:
    waits: list[float] = []
    with serve_folder(folder, Faults(drop_mid_body=2)) as (url, _):
        remote = session(waits)
        handle = RemoteFile(f"{url}/blob.bin", remote, size=len(DATA))
        assert handle.read(0, 4096) == DATA[:4096]
    assert len(waits) == 2 and all(0 < wait <= 20 for wait in waits)


def test_persistent_failure_gives_up_after_the_bounded_attempts(folder: Path) -> None:
    waits: list[float] = []
    with serve_folder(folder, Faults(drop_mid_body=100)) as (url, faults):
        handle = RemoteFile(f"{url}/blob.bin", session(waits, attempts=3), size=len(DATA))
        with pytest.raises(RemoteError, match="gave up after 3 attempts"):
            handle.read(0, 4096)
    assert len(faults.requests) == 3 and len(waits) == 2


def test_a_wrong_range_and_a_missing_file_are_errors(folder: Path) -> None:
    with serve_folder(folder, Faults(wrong_range=True)) as (url, _):
        handle = RemoteFile(f"{url}/blob.bin", session(), size=len(DATA))
        with pytest.raises(RemoteError, match="asked for bytes 10-19"):
            handle.read(10, 10)
    with serve_folder(folder) as (url, _), pytest.raises(RemoteError, match="404"):
        RemoteFile(f"{url}/nothing.bin", session())


def test_an_unreachable_host_is_a_remote_error() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []
    with pytest.raises(RemoteError, match="cannot connect") as error:
        RemoteFile(f"http://127.0.0.1:{port}/x.safetensors", session(waits, attempts=5))
    assert len(waits) == 1  # one retry, not the whole policy
    assert error.value.exit_code == 4


def test_hf_locations_resolve_to_resolve_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    repo = HubRepo.parse("hf://moonshotai/Kimi-K2.5@abc123")
    assert (repo.repo, repo.revision) == ("moonshotai/Kimi-K2.5", "abc123")
    assert (
        repo.file_url("config.json")
        == "https://huggingface.co/moonshotai/Kimi-K2.5/resolve/abc123/config.json"
    )
    assert HubRepo.parse("hf://org/name").revision == "main"
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert (
        HubRepo.parse("hf://org/name/sub").file_url("a b.json")
        == "http://127.0.0.1:9/org/name/resolve/main/sub/a%20b.json"
    )
    for bad in ("hf://org", "hf://org/", "hf:///name", "hf://org/name@"):
        with pytest.raises(RemoteError, match="expected hf://"):
            HubRepo.parse(bad)


def test_the_token_goes_to_the_hub_host_only(folder: Path) -> None:
    seen: list[str | None] = []
    lock = threading.Lock()

    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            seen.append(request.headers.get("Authorization"))
        return httpx.Response(206, headers={"Content-Range": "bytes 0-0/10"}, content=b"x")

    remote = RemoteSession(
        hf_token="secret", hf_endpoint="https://hub.example", transport=httpx.MockTransport(handler)
    )
    RemoteFile("https://hub.example/org/m/resolve/main/model.safetensors", remote)
    RemoteFile("https://elsewhere.example/model.safetensors", remote)
    assert seen == ["Bearer secret", None]


@pytest.mark.skipif(
    importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None,
    reason="Starlette/uvicorn are not installed on this machine (a range server nobody here wrote)",
)
def test_against_starlette_static_files(tmp_path: Path) -> None:
    """The same reads against a real range-capable server, not our own fake."""
    import socket
    import time

    import uvicorn
    from starlette.applications import Starlette
    from starlette.staticfiles import StaticFiles

    tensors = {"w": np.arange(64 * 32, dtype=np.float32).reshape(64, 32)}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    app = Starlette()
    app.mount("/", StaticFiles(directory=tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        remote = session()
        handle = RemoteFile(f"http://127.0.0.1:{port}/model.safetensors", remote)
        local = (tmp_path / "model.safetensors").read_bytes()
        assert handle.size == len(local)
        assert handle.read(0, 8) == local[:8]
        assert handle.read(len(local) - 100, 100) == local[-100:]
        # The size probe asks for more than the file holds: a real server clamps the range.
        assert remote.probe(f"http://127.0.0.1:{port}/model.safetensors", 1 << 20) == (len(local), local)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_sampled_rows_of_a_remote_tensor_coalesce_within_the_gap_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modeltrace.formats import base
    from modeltrace.formats.safetensors import SafetensorsReader

    matrix = np.arange(64 * 16, dtype=np.float32).reshape(64, 16)  # rows of 64 bytes
    save_file({"w": matrix}, str(tmp_path / "m.safetensors"))
    rows = [40, 1, 3, 20, 21, 63]  # runs 1, 3, 20-21, 40, 63: gaps of 1, 16, 18 and 22 rows
    with serve_folder(tmp_path) as (url, faults):
        for gap_rows, requests in ((0, 5), (1, 4), (20, 2), (64, 1)):
            monkeypatch.setattr(base, "ROW_GAP_BYTES", gap_rows * 64)
            faults.requests.clear()
            reader = SafetensorsReader(tmp_path / "m.safetensors")
            handle = RemoteFile(
                f"{url}/m.safetensors", session(), size=(tmp_path / "m.safetensors").stat().st_size
            )
            monkeypatch.setitem(reader._files, str(tmp_path / "m.safetensors"), handle)  # type: ignore[arg-type]
            np.testing.assert_array_equal(reader.read_rows("w", rows), matrix[rows])
            assert len(faults.requests) == requests, gap_rows
