"""Run ``modeltrace serve`` as a real child process on a loopback port (browser and crash tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(db: str, port: int) -> subprocess.Popen[bytes]:
    """``modeltrace serve`` in a child process, returned once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "modeltrace", "serve", "--port", str(port), "--db", db],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/models", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start within 60 s")


def label_bytes(template: dict, index: int, salt: str) -> bytes:
    """A valid provenance label for a distinct (made-up) model: its own name and OMS root."""
    import copy
    import hashlib
    import json

    label = copy.deepcopy(template)
    label["model"]["name"] = f"{salt}-{index}"
    label["model"]["digests"]["oms_root"] = hashlib.sha256(f"{salt}/{index}".encode()).hexdigest()
    return json.dumps(label).encode()
