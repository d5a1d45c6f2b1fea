"""The moonshot benchmark: fingerprint a virtual 1 T-parameter Kimi-K2-shaped checkpoint over HTTP.

A loopback HTTP server (its own process) serves three virtual checkpoints built from the real Kimi
configs (see ``benchmarks/virtual_checkpoint.py``): the block-FP8 layout of Kimi K2
(``benchmarks/data/kimi-k2-instruct.json``, the default) or, with ``--layout int4``, the
compressed-tensors INT4 layout of Kimi K2.5 (``benchmarks/data/kimi-k2.5.json``): a base, a
fine-tuned child (base plus seeded noise) and an independent model. Each is fingerprinted
over HTTP in a fresh process (bytes transferred, requests, wall time, peak RSS); the base is also
fingerprinted from a sparse local copy holding only the bytes the HTTP run read (same fingerprint?),
then child-vs-base and independent-vs-base are compared.

    .venv/bin/python benchmarks/remote_fingerprint.py                   # the full Kimi K2 shape
    .venv/bin/python benchmarks/remote_fingerprint.py --layers 4        # a quick look
    .venv/bin/python benchmarks/remote_fingerprint.py --row-gaps 0,65536,1048576 --only-base
    .venv/bin/python benchmarks/remote_fingerprint.py --layout int4 --only-base   # Kimi K2.5 INT4

    .venv/bin/python benchmarks/remote_fingerprint.py --hub --only-base --no-local  # through a fake Hub

With ``--hub`` the models are read as ``hf://moonshot/NAME`` through a second loopback server that
answers like the Hugging Face Hub's resolver (small files itself, weight files by ``302`` to a signed
URL on the first server, the CDN, with ``X-Repo-Commit``, ``X-Linked-Size``, ``X-Linked-Etag``), so
the table splits the requests into those the Hub's *Resolvers* rate limit counts and the rest.

After the table, the requests of the first HTTP run are broken down by what they read.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import resource
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from virtual_checkpoint import LAYOUTS, VirtualModel

CONFIGS = {
    "fp8": Path(__file__).parent / "data" / "kimi-k2-instruct.json",
    "int4": Path(__file__).parent / "data" / "kimi-k2.5.json",
}
MODELS = {"base": (1, None), "child": (2, "base"), "independent": (3, None)}


def _models(layers: int | None, layout: str) -> dict[str, VirtualModel]:
    config = json.loads(CONFIGS[layout].read_text())
    built: dict[str, VirtualModel] = {}
    for name, (seed, parent) in MODELS.items():
        built[name] = VirtualModel(config, seed, parent=built.get(parent or ""), layers=layers, layout=layout)
    return built


HUB_ORG = "moonshot"
#: The commit the fake Hub names for every model (one revision is all the benchmark needs).
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _serve(layers: int | None, layout: str, port_out: Any, log_dir: str, hub: bool) -> None:
    """Server process: answers GET (with one ``Range``) for every file of every virtual model; with
    ``hub``, a second server in front of it answers like the Hub's resolver (see the module doc)."""
    models = _models(layers, layout)
    logs = {name: open(Path(log_dir) / f"{name}.ranges", "a") for name in models}  # noqa: SIM115
    resolves = {name: open(Path(log_dir) / f"{name}.resolves", "a") for name in models}  # noqa: SIM115
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts == ["cpu"]:  # the server process's CPU seconds so far: server vs client cost
                body = json.dumps({"seconds": time.process_time()}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
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
            for key, value in getattr(self, "extra_headers", {}).items():
                self.send_header(key, value)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    cdn = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    cdn_url = f"http://127.0.0.1:{cdn.server_address[1]}"

    class Resolver(Handler):
        def do_GET(self) -> None:
            match = re.match(rf"^/{HUB_ORG}/([^/]+)/resolve/[^/]+/([^/?]+)$", self.path)
            model = models.get(match.group(1)) if match else None
            if match is not None and model is not None:
                with lock:
                    resolves[match.group(1)].write(f"{match.group(2)}\n")
                    resolves[match.group(1)].flush()
            if match is None or model is None or model.size(match.group(2)) is None:
                super().do_GET()  # a 404 (or /cpu), as the Hub answers an unknown file
                return
            name, file = match.groups()
            if file not in model.shards:  # a small file: the Hub serves it itself
                self.path = f"/{name}/{file}"
                self.extra_headers = {"X-Repo-Commit": HUB_COMMIT}
                super().do_GET()
                return
            location = f"{cdn_url}/{name}/{file}?Expires={int(time.time()) + 3600}&Signature=moonshot"
            self.send_response(302)
            for key, value in {
                "Location": location,
                "X-Repo-Commit": HUB_COMMIT,
                "X-Linked-Size": str(model.size(file)),
                "X-Linked-Etag": f'"{name}-{file}"',
                "Content-Length": "0",
            }.items():
                self.send_header(key, value)
            self.end_headers()

    servers = [cdn] + ([ThreadingHTTPServer(("127.0.0.1", 0), Resolver)] if hub else [])
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    port_out.put([server.server_address[1] for server in servers])
    cdn.serve_forever()


def _server_cpu(url: str) -> float:
    with urllib.request.urlopen(f"{url}/cpu") as answer:  # our own loopback server
        return float(json.loads(answer.read())["seconds"])


def _census(model: VirtualModel, ranges_log: Path) -> list[tuple[str, int, int]]:
    """(what was read, requests, bytes) from the server's log: tensor names with layer and expert
    numbers folded into ``#``, headers and small files apart."""
    counts: dict[str, list[int]] = {}
    for line in ranges_log.read_text().splitlines():
        name, start, stop = line.split()
        shard = model.shards.get(name)
        if shard is None:
            kind = name
        elif int(start) < len(shard.header):
            kind = "shard size probe and header"
        else:
            offset = int(start) - len(shard.header)
            index = int(np.searchsorted(shard._starts, offset, side="right")) - 1
            kind = re.sub(r"\.\d+\.", ".#.", shard.tensors[index].name)
        entry = counts.setdefault(kind, [0, 0])
        entry[0] += 1
        entry[1] += int(stop) - int(start)
    return sorted(((kind, n, size) for kind, (n, size) in counts.items()), key=lambda row: -row[1])


def _same_fingerprint(first: Path, second: Path) -> bool:
    """Every kept array and digest equal (anchors, Gram, MLP blocks, value rows, residual sample)."""
    from modeltrace.fingerprint.model import load_fingerprint

    a, b = load_fingerprint(first), load_fingerprint(second)
    arrays = [(a.anchor_gram, b.anchor_gram)]
    same = a.anchors == b.anchors and len(a.blocks) == len(b.blocks) and len(a.attention) == len(b.attention)
    for x, y in zip(a.blocks, b.blocks, strict=False):
        same = same and x.digest == y.digest and (x.gate is None) == (y.gate is None)
        arrays += [(x.unit_rows, y.unit_rows), (x.up, y.up)] + (
            [(x.gate, y.gate)] if x.gate is not None else []
        )
    for x, y in zip(a.attention, b.attention, strict=False):
        same = same and x.digest == y.digest
        arrays += [(x.unit_rows, y.unit_rows), (x.value, y.value)]
    if a.residual is not None and b.residual is not None:
        arrays.append((a.residual.columns, b.residual.columns))
    return same and all(np.array_equal(x, y) for x, y in arrays)


def _fingerprint(location: str, output: str, row_gap: int, result: Any) -> None:
    """Child process: one fingerprint, its summary, wall time and peak RSS."""
    from modeltrace import api
    from modeltrace.formats import base

    base.ROW_GAP_BYTES = row_gap
    start = time.perf_counter()
    summary = api.fingerprint(location, output)
    summary["seconds"] = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary["peak_rss_mb"] = usage.ru_maxrss / 1024
    summary["client_cpu_s"] = usage.ru_utime + usage.ru_stime  # this process: decoding, products, HTTP
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
    parser.add_argument("--layout", choices=LAYOUTS, default="fp8",
                        help="fp8: Kimi K2 block-FP8 (default); int4: Kimi K2.5 INT4")  # fmt: skip
    parser.add_argument("--hub", action="store_true",
                        help="read hf://moonshot/NAME via a fake Hub that redirects to a CDN")  # fmt: skip
    args = parser.parse_args()
    gaps = [int(value) for value in args.row_gaps.split(",")]
    work = Path(tempfile.mkdtemp(prefix="modeltrace-moonshot-"))
    context = multiprocessing.get_context("spawn")
    port_queue = context.Queue()
    server = context.Process(
        target=_serve, args=(args.layers, args.layout, port_queue, str(work), args.hub), daemon=True
    )
    server.start()
    ports = port_queue.get()
    url = f"http://127.0.0.1:{ports[0]}"
    if args.hub:  # the fingerprinting processes (spawned below) inherit it
        os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{ports[1]}"

    kind = "hf:// Hub" if args.hub else "HTTP"

    def location(name: str) -> str:
        return f"hf://{HUB_ORG}/{name}" if args.hub else f"{url}/{name}"

    models = _models(args.layers, args.layout)
    print(
        f"virtual checkpoints ({args.layout}): {models['base'].total_bytes / 1e12:.3f} TB each, "
        f"{len(models['base'].shards)} shards\n"
    )
    rows: list[tuple[str, str, dict[str, Any]]] = []
    outputs: dict[str, Path] = {}
    census: list[tuple[str, int, int]] = []
    for gap in gaps:
        (work / "base.ranges").write_text("")
        (work / "base.resolves").write_text("")
        outputs["base"] = work / f"base-gap{gap}.mtfp"
        cpu = _server_cpu(url)
        summary = _run_fingerprint(location("base"), outputs["base"], gap)
        summary["server_cpu_s"] = _server_cpu(url) - cpu
        rows.append(("base", f"{kind} gap {gap // 1024} KiB", summary))
        census = census or _census(models["base"], work / "base.ranges")
    if not args.no_local:
        copy = work / "local-base"
        written = _sparse_copy(models["base"], work / "base.ranges", copy)
        local = _run_fingerprint(str(copy), work / "local.mtfp", 0)
        local["note"] = f"sparse copy, {written / 1e9:.2f} GB written"
        rows.append(("base", "local file", local))
    if not args.only_base:
        for name in ("child", "independent"):
            outputs[name] = work / f"{name}.mtfp"
            cpu = _server_cpu(url)
            summary = _run_fingerprint(location(name), outputs[name], gaps[0])
            summary["server_cpu_s"] = _server_cpu(url) - cpu
            rows.append((name, f"{kind} gap {gaps[0] // 1024} KiB", summary))
    server.terminate()

    print(
        f"{'model':<12} {'path':<20} {'GB read':>8} {'GB sent':>8} {'requests':>9} {'resolver':>9} "
        f"{'data':>6} {'seconds':>8} {'client CPU s':>12} {'server CPU s':>12} {'RSS MB':>7}"
    )
    for name, path, summary in rows:
        transfer = summary.get("transfer", {})
        sent = transfer.get("bytes_transferred")
        server_cpu = summary.get("server_cpu_s")
        print(
            f"{name:<12} {path:<20} {summary['bytes_read'] / 1e9:>8.3f} "
            f"{'-' if sent is None else f'{sent / 1e9:.3f}':>8} {transfer.get('requests', '-'):>9} "
            f"{transfer.get('resolver_requests', '-'):>9} {transfer.get('data_requests', '-'):>6} "
            f"{summary['seconds']:>8.1f} {summary['client_cpu_s']:>12.1f} "
            f"{'-' if server_cpu is None else f'{server_cpu:.1f}':>12} "
            f"{summary['peak_rss_mb']:>7.0f} {summary.get('note', '')}"
        )
    if args.hub:
        resolved = (work / "base.resolves").read_text().splitlines()
        print(
            f"\nthe fake Hub's resolver saw {len(resolved)} requests for the base (last run), "
            f"{len(set(resolved))} distinct files, at most {max(map(resolved.count, set(resolved)))} per file"
        )
    print(f"\nrequests of the first base run by what they read ({sum(n for _, n, _ in census)} in all):")
    for kind, count, size in census:
        print(f"  {count:>7} {size / 1e6:>10.1f} MB  {kind}")
    from modeltrace import api

    if not args.no_local:
        same = _same_fingerprint(outputs["base"], work / "local.mtfp")
        print(f"\nHTTP fingerprint == local fingerprint: {same} (every kept array and digest)")
    if not args.only_base:
        for name in ("child", "independent"):
            start = time.perf_counter()
            result = api.compare(outputs[name], outputs["base"])
            shown = "-" if result.log10_p is None else f"{result.log10_p:.1f}"
            print(
                f"{name}-vs-base: {result.verdict} (log10 p {shown}, "
                f"test {result.p_value_test}, compare {time.perf_counter() - start:.1f} s)"
            )
    print(
        f"\nfiles in {work} (delete when done); {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
