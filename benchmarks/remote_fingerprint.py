"""The moonshot benchmark: fingerprint a virtual 1 T-parameter Kimi-K2-shaped checkpoint over HTTP.

A loopback HTTP server (its own process) serves three virtual block-FP8 checkpoints built from the
real Kimi K2 config (``benchmarks/data/kimi-k2-instruct.json``; see ``benchmarks/virtual_checkpoint.py``):
a base, a fine-tuned child (base plus seeded noise) and an independent model. Each is fingerprinted
over HTTP in a fresh process (bytes transferred, requests, wall time, peak RSS); the base is also
fingerprinted from a sparse local copy holding only the bytes the HTTP run read (same fingerprint?),
then child-vs-base and independent-vs-base are compared.

    .venv/bin/python benchmarks/remote_fingerprint.py                   # the full Kimi K2 shape
    .venv/bin/python benchmarks/remote_fingerprint.py --layers 4        # a quick look
    .venv/bin/python benchmarks/remote_fingerprint.py --row-gaps 0,65536,1048576 --only-base
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from virtual_checkpoint import VirtualModel

CONFIG = Path(__file__).parent / "data" / "kimi-k2-instruct.json"
MODELS = {"base": (1, None), "child": (2, "base"), "independent": (3, None)}


def _models(layers: int | None) -> dict[str, VirtualModel]:
    config = json.loads(CONFIG.read_text())
    built: dict[str, VirtualModel] = {}
    for name, (seed, parent) in MODELS.items():
        built[name] = VirtualModel(config, seed, parent=built.get(parent or ""), layers=layers)
    return built


def _serve(layers: int | None, port_out: Any, log_dir: str) -> None:
    """Server process: answers GET (with one ``Range``) for every file of every virtual model."""
    models = _models(layers)
    logs = {name: open(Path(log_dir) / f"{name}.ranges", "a") for name in models}  # noqa: SIM115
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            model = models.get(parts[0]) if len(parts) == 2 else None
            size = None if model is None else model.size(parts[1])
            if model is None or size is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            header = self.headers.get("Range")
            if header is None:
                start, stop, status = 0, size, 200
            else:
                first, _, last = header.removeprefix("bytes=").partition("-")
                start, stop, status = int(first), min(size, int(last) + 1), 206
            body = model.read(parts[1], start, stop)
            with lock:
                logs[parts[0]].write(f"{parts[1]} {start} {stop}\n")
                logs[parts[0]].flush()
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.put(server.server_address[1])
    server.serve_forever()


def _fingerprint(location: str, output: str, row_gap: int, result: Any) -> None:
    """Child process: one fingerprint, its summary, wall time and peak RSS."""
    from modeltrace import api
    from modeltrace.formats import base

    base.ROW_GAP_BYTES = row_gap
    start = time.perf_counter()
    summary = api.fingerprint(location, output)
    summary["seconds"] = time.perf_counter() - start
    summary["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.put(summary)


def _run_fingerprint(location: str, output: Path, row_gap: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_fingerprint, args=(location, str(output), row_gap, queue))
    process.start()
    summary = queue.get()
    process.join()
    return summary


def _sparse_copy(model: VirtualModel, ranges_log: Path, folder: Path) -> int:
    """The model's files at full size, holding only the byte ranges the server sent; returns bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in model.small.items():
        (folder / name).write_bytes(data)
    written = 0
    handles = {}
    for name, shard in model.shards.items():
        handles[name] = open(folder / name, "wb")  # noqa: SIM115
        handles[name].truncate(shard.size)
    for line in ranges_log.read_text().splitlines():
        name, start, stop = line.split()
        if name in handles:
            handles[name].seek(int(start))
            handles[name].write(model.read(name, int(start), int(stop)))
            written += int(stop) - int(start)
    for handle in handles.values():
        handle.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=None, help="decoder layers (default: the config's 61)")
    parser.add_argument("--row-gaps", default="0", help="comma-separated ROW_GAP_BYTES values for the base")
    parser.add_argument("--only-base", action="store_true", help="skip the child, independent and verdicts")
    parser.add_argument("--no-local", action="store_true", help="skip the sparse local copy")
    args = parser.parse_args()
    gaps = [int(value) for value in args.row_gaps.split(",")]
    work = Path(tempfile.mkdtemp(prefix="modeltrace-moonshot-"))
    context = multiprocessing.get_context("spawn")
    port_queue = context.Queue()
    server = context.Process(target=_serve, args=(args.layers, port_queue, str(work)), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port_queue.get()}"
    models = _models(args.layers)
    print(
        f"virtual checkpoints: {models['base'].total_bytes / 1e12:.3f} TB each, "
        f"{len(models['base'].shards)} shards\n"
    )
    rows: list[tuple[str, str, dict[str, Any]]] = []
    outputs: dict[str, Path] = {}
    for gap in gaps:
        (work / "base.ranges").write_text("")
        outputs["base"] = work / f"base-gap{gap}.mtfp"
        rows.append(
            ("base", f"HTTP gap {gap // 1024} KiB", _run_fingerprint(f"{url}/base", outputs["base"], gap))
        )
    if not args.no_local:
        copy = work / "local-base"
        written = _sparse_copy(models["base"], work / "base.ranges", copy)
        local = _run_fingerprint(str(copy), work / "local.mtfp", 0)
        local["note"] = f"sparse copy, {written / 1e9:.2f} GB written"
        rows.append(("base", "local file", local))
    if not args.only_base:
        for name in ("child", "independent"):
            outputs[name] = work / f"{name}.mtfp"
            rows.append(
                (
                    name,
                    f"HTTP gap {gaps[0] // 1024} KiB",
                    _run_fingerprint(f"{url}/{name}", outputs[name], gaps[0]),
                )
            )
    server.terminate()

    print(
        f"{'model':<12} {'path':<16} {'GB read':>8} {'GB sent':>8} {'requests':>9} "
        f"{'seconds':>8} {'RSS MB':>7}"
    )
    for name, path, summary in rows:
        transfer = summary.get("transfer", {})
        sent = transfer.get("bytes_transferred")
        print(
            f"{name:<12} {path:<16} {summary['bytes_read'] / 1e9:>8.3f} "
            f"{'-' if sent is None else f'{sent / 1e9:.3f}':>8} {transfer.get('requests', '-'):>9} "
            f"{summary['seconds']:>8.1f} {summary['peak_rss_mb']:>7.0f} {summary.get('note', '')}"
        )
    from modeltrace import api
    from modeltrace.fingerprint.model import load_fingerprint

    if not args.no_local:
        remote, local_fp = load_fingerprint(outputs["base"]), load_fingerprint(work / "local.mtfp")
        same = [b.digest for b in remote.blocks] == [b.digest for b in local_fp.blocks] and all(
            (a.up == b.up).all() for a, b in zip(remote.blocks, local_fp.blocks, strict=True)
        )
        print(f"\nHTTP fingerprint == local fingerprint: {same} ({len(remote.blocks)} MLP blocks)")
    if not args.only_base:
        for name in ("child", "independent"):
            start = time.perf_counter()
            result = api.compare(outputs[name], outputs["base"])
            shown = "-" if result.log10_p is None else f"{result.log10_p:.1f}"
            print(
                f"{name}-vs-base: {result.verdict} (log10 p {shown}, "
                f"test {result.p_value_test}, compare {time.perf_counter() - start:.1f} s)"
            )
    print(f"\nfiles in {work} (delete when done); {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
