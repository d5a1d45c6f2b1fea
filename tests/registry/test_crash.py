"""SIGKILL the server during a stream of writes: every write acknowledged (201) before the kill is
there after a restart, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from modeltrace import api
from tests.registry.serverproc import free_port, label_bytes, start_server


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_acknowledged_writes_survive_sigkill(db_url: str, lineage_models: dict[str, Path]) -> None:
    template = dict(api.label_create(lineage_models["base"], name="template"))
    with api.open_registry(db_url) as registry:
        token = api.token_create("crash", registry=registry)
    headers = {"Authorization": f"Bearer {token}"}
    port = free_port()
    server = start_server(db_url, port)
    acknowledged: list[tuple[str, int]] = []
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for index in range(10_000):
                if stop.is_set():
                    return
                name = f"w{worker}-{index}"
                upload = {"label": ("l.json", label_bytes(template, index, f"w{worker}"))}
                form = {"namespace": "crash", "name": name}
                try:
                    response = client.post("/api/models", headers=headers, data=form, files=upload)
                except httpx.HTTPError:
                    return  # the server is gone: this write was never acknowledged
                if response.status_code == 201:
                    acknowledged.append((name, response.json()["model"]["id"]))

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(server.pid, signal.SIGKILL)
    server.wait(timeout=10)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 40, "the server acknowledged too few writes before the kill"
    restarted = start_server(db_url, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            missing = [name for name, model_id in acknowledged
                       if client.get(f"/api/models/{model_id}").json().get("name") != name]  # fmt: skip
            assert missing == []
            total = client.get("/api/models", params={"namespace": "crash", "limit": 1}).json()["total"]
            assert total >= len(acknowledged)
    finally:
        restarted.terminate()
        restarted.wait(timeout=10)
