"""Load test of the registry service on loopback: N concurrent clients writing and reading.

    python benchmarks/load.py                      # 50 clients, 60 s, SQLite in a temporary folder
    python benchmarks/load.py --db postgresql://u:p@127.0.0.1/db --clients 50 --duration 60

Starts ``modeltrace serve`` on 127.0.0.1 (never another interface), creates a write token, then
each client loops: with probability --write-fraction it registers a new label (a distinct model,
uploaded as the service expects: no weights), otherwise it lists/searches models or reads one.
Bounded: at most 200 clients and 600 s. Prints requests/s, p50/p99 latency, errors, and lost
writes: acknowledged (201) registrations that cannot be read back afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from modeltrace import api

MAX_CLIENTS, MAX_SECONDS = 200, 600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(db: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "modeltrace", "serve", "--host", "127.0.0.1", "--port", str(port), "--db", db],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ),
    )  # fmt: skip
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/models", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def _label(template: dict, key: str) -> bytes:
    label = copy.deepcopy(template)
    label["model"]["name"] = key
    label["model"]["digests"]["oms_root"] = hashlib.sha256(key.encode()).hexdigest()
    return json.dumps(label).encode()


async def _client(index: int, base: str, token: str, template: dict, until: float, stats: dict) -> None:
    rng = random.Random(index)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        count = 0
        while time.monotonic() < until:
            count += 1
            start = time.perf_counter()
            try:
                if rng.random() < stats["write_fraction"]:
                    key = f"load-{index}-{count}"
                    upload = {"label": ("l.json", _label(template, key))}
                    response = await client.post("/api/models", headers=headers, data={"namespace": "load"},
                                                 files=upload)  # fmt: skip
                    if response.status_code == 201:
                        stats["acknowledged"].append((key, response.json()["model"]["id"]))
                elif rng.random() < 0.5 or not stats["acknowledged"]:
                    response = await client.get(
                        "/api/models", params={"q": f"load-{rng.randrange(50)}", "limit": 20}
                    )
                else:
                    _key, model_id = rng.choice(stats["acknowledged"])
                    response = await client.get(f"/api/models/{model_id}")
                ok = response.status_code < 400
            except httpx.HTTPError:
                ok = False
            stats["latencies"].append(time.perf_counter() - start)
            if not ok:
                stats["errors"] += 1


async def _verify(base: str, acknowledged: list[tuple[str, int]]) -> int:
    lost = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for key, model_id in acknowledged:
            response = await client.get(f"/api/models/{model_id}")
            if response.status_code != 200 or response.json().get("name") != key:
                lost += 1
    return lost


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary folder)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--write-fraction", type=float, default=0.2)
    args = parser.parse_args()
    clients = max(1, min(args.clients, MAX_CLIENTS))
    duration = max(1.0, min(args.duration, MAX_SECONDS))
    folder = Path(tempfile.mkdtemp(prefix="modeltrace-load-"))
    db = args.db or f"sqlite:///{folder / 'registry.sqlite'}"
    template = dict(api.label_create(api.demo_zoo_members(api.build_demo_zoo(folder))[1], name="template"))
    with api.open_registry(db) as registry:
        token = api.token_create("load", registry=registry)
    port = _free_port()
    server = _start(db, port)
    base = f"http://127.0.0.1:{port}"
    stats: dict = {"latencies": [], "errors": 0, "acknowledged": [], "write_fraction": args.write_fraction}
    try:
        until = time.monotonic() + duration
        began = time.monotonic()

        async def run_all() -> None:
            await asyncio.gather(*(_client(i, base, token, template, until, stats) for i in range(clients)))

        asyncio.run(run_all())
        elapsed = time.monotonic() - began
        lost = asyncio.run(_verify(base, stats["acknowledged"]))
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies = sorted(stats["latencies"])
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000
    backend = "postgresql" if db.startswith("postgres") else "sqlite"
    columns = ("backend", "clients", "seconds", "requests", "req/s", "p50 ms", "p99 ms", "errors",
               "writes acked", "lost writes")  # fmt: skip
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rate = len(latencies) / elapsed
    print(f"| {backend} | {clients} | {elapsed:.0f} | {len(latencies)} | {rate:.1f} | {p50:.0f} | "
          f"{p99:.0f} | {stats['errors']} | {len(stats['acknowledged'])} | {lost} |")  # fmt: skip


if __name__ == "__main__":
    main()
