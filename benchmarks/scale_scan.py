"""Scan throughput: models/s of ``modeltrace scan`` with the local process pool against Ray tasks.

Generates N small Llama-shaped models (the zoo's writers, random weights; a third of them
fine-tuned children of the others so that detection has something to find), then scans the same
set into fresh registries, side by side:

* from local folders (the content digest reads every byte, the fingerprint its sampled rows);
* over HTTP from a loopback range server (headers and sampled rows only, by range requests);

each with ``--executor local`` and ``--executor ray`` (a local Ray instance, started before the
timed scan; its start-up is its own column). Lineage detection is off in these rows; ``--detect``
adds a row per executor with it on (the comparisons run in the workers, the parent shortlists,
ranks and records).

Every row prints wall time and CPU time side by side, with the load average: on a shared machine
wall time measures the other jobs as much as the scan, CPU time does not (re-measure wall time on
an idle machine). Parent CPU is this process's (the scan's single writer); worker CPU is what the
workers' tasks report (``worker_cpu_s``), or for the local pool of a modeltrace that does not
report it, the CPU of the pool's exited child processes.

    .venv/bin/python benchmarks/scale_scan.py                      # 24 models, 2 workers
    .venv/bin/python benchmarks/scale_scan.py --models 48 --workers 4 --detect
    .venv/bin/python benchmarks/scale_scan.py --detect-only --shortlist 4   # the shortlist's cost
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from modeltrace import api
from modeltrace.zoo.arch import ArchConfig, parameter_shapes
from modeltrace.zoo.files import write_hf_folder

_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


def write_models(folder: Path, count: int, hidden: int, layers: int) -> list[Path]:
    """``count`` model folders: every third one a fine-tuned child of the one before it."""
    config = ArchConfig("llama", vocab_size=512, hidden_size=hidden, intermediate_size=2 * hidden,
                        num_layers=layers, num_heads=4, num_kv_heads=2)  # fmt: skip
    vocab = [f"tok{index}" for index in range(config.vocab_size)]
    paths = []
    previous: dict[str, np.ndarray] = {}
    for index in range(count):
        rng = np.random.default_rng(index)
        if index % 3 == 2:  # a child: the previous model plus small noise
            tensors = {name: value + 0.02 * rng.standard_normal(value.shape).astype(np.float32)
                       for name, value in previous.items()}  # fmt: skip
        else:
            tensors = {name: (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
                       for name, shape in parameter_shapes(config).items()}  # fmt: skip
        previous = tensors
        paths.append(write_hf_folder(folder / f"model-{index:04d}", config, tensors, vocab))
    return paths


def _serve_forever(root: str, port_out: Any) -> None:
    """Server process: answers GET with one ``Range`` (206) for files under ``root``."""
    base = Path(root)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            target = (base / self.path.lstrip("/")).resolve()
            if not target.is_relative_to(base) or not target.is_file():
                self._reply(404, b"")
                return
            data = target.read_bytes()
            match = _RANGE.match(self.headers.get("Range", ""))
            if match is None:
                self._reply(200, data)
                return
            start, stop = int(match.group(1)), min(int(match.group(2)) + 1, len(data))
            self._reply(206, data[start:stop], {"Content-Range": f"bytes {start}-{stop - 1}/{len(data)}"})

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.put(server.server_address[1])
    server.serve_forever()


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """The loopback range server in its own process: sharing the scan's process (and its GIL)
    would add milliseconds to every request of the executor whose parent is busiest."""
    context = multiprocessing.get_context("spawn")
    port_out = context.Queue()
    process = context.Process(target=_serve_forever, args=(str(root), port_out), daemon=True)
    process.start()
    try:
        yield f"http://127.0.0.1:{port_out.get(timeout=120)}"
    finally:
        process.terminate()
        process.join()


def timed_scan(sources: list[str], executor: str, workers: int, folder: Path, detect: bool) -> dict[str, Any]:
    startup = 0.0
    if executor == "ray":
        import ray

        began = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 _system_config={"worker_register_timeout_seconds": 180})  # fmt: skip
        startup = time.perf_counter() - began
    load_before = os.getloadavg()[0]
    parent_cpu = time.process_time()
    children_cpu = _children_cpu()
    try:
        db = str(folder / f"{executor}-{time.monotonic_ns()}.sqlite")
        result = api.scan(sources, executor=executor, workers=workers, db=db, detect=detect)
    finally:
        parent_cpu = time.process_time() - parent_cpu
        children_cpu = _children_cpu() - children_cpu  # the pool's workers have exited by now
        if executor == "ray":
            ray.shutdown()
    totals = result["totals"]
    if result["exit_code"] != 0:
        failed = [row for row in result["results"] if row["status"] == "failed"][:3]
        raise SystemExit(f"scan failed: {failed}")
    edges = len(api.registry_graph(db=db)["edges"])
    worker_cpu = totals.get("worker_cpu_s")
    if worker_cpu is None and executor == "local":
        worker_cpu = children_cpu
    load = (load_before + os.getloadavg()[0]) / 2
    return {**totals, "startup": startup, "edges": edges, "parent_cpu": parent_cpu, "worker_cpu": worker_cpu,
            "load": load}  # fmt: skip


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=24, help="models to generate (default 24)")
    parser.add_argument("--workers", type=int, default=2, help="workers of each executor (default 2)")
    parser.add_argument("--hidden", type=int, default=128, help="hidden size of the models (default 128)")
    parser.add_argument("--layers", type=int, default=4, help="layers of the models (default 4)")
    parser.add_argument("--detect", action="store_true", help="add rows with lineage detection on")
    parser.add_argument("--detect-only", action="store_true", help="only the rows with detection on")
    parser.add_argument(
        "--shortlist",
        type=int,
        default=None,
        help="compare each newcomer with this many registered models nearest by sketch (default: "
        "modeltrace's, 32; a small one shows the shortlist's cost with few models)",
    )
    args = parser.parse_args()
    if args.shortlist is not None:
        import modeltrace.lineage.candidates as candidates

        candidates.DEFAULT_SHORTLIST = args.shortlist  # read when a newcomer's candidates are chosen
    with tempfile.TemporaryDirectory(prefix="modeltrace-scale-scan-") as tmp:
        folder = Path(tmp)
        paths = write_models(folder / "models", args.models, args.hidden, args.layers)
        size = sum(f.stat().st_size for p in paths for f in p.iterdir())
        each = size / len(paths) / 1e6
        shortlist = f"; shortlist {args.shortlist}" if args.shortlist is not None else ""
        print(f"{len(paths)} models, {each:.2f} MB each; {args.workers} workers{shortlist}", flush=True)
        rows = []
        with serve((folder / "models").resolve()) as url:
            remote = [f"{url}/{path.name}" for path in paths]
            local = [str(path) for path in paths]
            plan = [("local", "folders", local, False), ("ray", "folders", local, False),
                    ("local", "http", remote, False), ("ray", "http", remote, False)]  # fmt: skip
            if args.detect_only:
                plan = []
            if args.detect or args.detect_only:
                plan += [("local", "folders", local, True), ("ray", "folders", local, True)]
            for executor, kind, sources, detect in plan:
                totals = timed_scan(sources, executor, args.workers, folder, detect)
                rows.append((executor, kind, detect, totals))
                label = f"{executor} {kind}" + (" +detect" if detect else "")
                print(f"  {label}: {totals['seconds']:.1f} s", flush=True)
        header = (
            f"{'executor':<9}{'source':<9}{'detect':<8}{'models':>7}{'wall s':>8}{'models/s':>10}"
            f"{'start-up s':>11}{'parent CPU s':>13}{'worker CPU s':>13}{'CPU s/model':>12}{'load':>6}"
            f"{'MB read':>9}{'KB/model':>10}{'req/model':>10}{'pairs':>7}{'edges':>7}"
        )
        print()
        print(header)
        print("-" * len(header))
        for executor, kind, detect, t in rows:
            count = t["read"] or 1
            workers_cpu = "-" if t["worker_cpu"] is None else f"{t['worker_cpu']:.1f}"
            per_model = (
                "-" if t["worker_cpu"] is None else f"{(t['parent_cpu'] + t['worker_cpu']) / count:.2f}"
            )
            print(
                f"{executor:<9}{kind:<9}{'yes' if detect else 'no':<8}{t['read']:>7}{t['seconds']:>8.1f}"
                f"{t['models_per_s']:>10.2f}{t['startup']:>11.1f}{t['parent_cpu']:>13.1f}{workers_cpu:>13}"
                f"{per_model:>12}{t['load']:>6.1f}{t['bytes'] / 1e6:>9.2f}{t['bytes'] / count / 1e3:>10.1f}"
                f"{t['requests'] / count:>10.1f}{t.get('comparisons', '-'):>7}{t['edges']:>7}"
            )
        print(
            f"\nwall time and models/s measure this machine's load as much as the scan (load = mean "
            f"1-minute load average over the row, {os.cpu_count()} CPUs); CPU seconds do not. "
            "pairs: comparisons made in the workers ('-': made in the parent)."
        )


if __name__ == "__main__":
    sys.exit(main())
