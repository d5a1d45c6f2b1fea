"""How fast `compare` is on Kimi-K2-shaped fingerprints: wall and CPU seconds, block pairs compared,
verdicts and p-values; optionally the exhaustive block pairing (every block pair) beside the
shortlist, and the end-to-end CLI (`modeltrace compare A B`: Python start, loading both files,
comparing).

Synthetic fingerprints (built in memory; a base, a fine-tuned child = base plus noise, and an
independent model) have the shape a format-4 fingerprint of Kimi K2 has (``--shape v4``, the
default): 61 layers = 1 dense layer + 60 MoE layers each with the shared expert and 4 sampled routed
experts (301 MLP blocks of 128 sampled units), 128 value rows per attention layer, a residual sample
of 512 dimensions, and 320 anchor tokens (256 by string + 64 by index, as a model with its tokenizer
gets). ``--shape 8-experts`` is the earlier synthetic shape (8 routed experts = 541 blocks, 64
value rows, no residual sample), which reproduces the tables measured before format 4.

``--fingerprints BASE CHILD INDEPENDENT`` times fingerprint files instead, e.g. the three that
``benchmarks/remote_fingerprint.py`` builds from its virtual Kimi K2 checkpoint (it prints their
folder: ``base-gap0.mtfp``, ``child.mtfp``, ``independent.mtfp``); loading is timed apart.

BLAS runs on one thread, as in the CLI (``--blas-threads`` to change it); ``--workers`` sets the
comparison's own threads (default: the cores, at most 4; results are bit for bit the same).

    .venv/bin/python benchmarks/compare_speed.py                        # Kimi K2, format 4, shortlist
    .venv/bin/python benchmarks/compare_speed.py --cli                  # + `modeltrace compare` end to end
    .venv/bin/python benchmarks/compare_speed.py --identify             # one suspect vs 2 bases, cache or not
    .venv/bin/python benchmarks/compare_speed.py --layers 5,9,17 --exhaustive  # both pairings
    .venv/bin/python benchmarks/compare_speed.py --shape 8-experts --workers 1 # the earlier shape
    .venv/bin/python benchmarks/compare_speed.py --fingerprints DIR/base-gap0.mtfp DIR/child.mtfp \
        DIR/independent.mtfp --cli

``--save-json FILE`` writes every comparison's ``as_dict()``; run it once against other code
(``PYTHONPATH=OTHER/src``) and ``cmp`` the two files to prove identical answers.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from modeltrace.fingerprint.model import (
    AttentionSample,
    BlockSample,
    Fingerprint,
    ResidualSample,
    load_fingerprint,
)
from modeltrace.lineage.compare import compare_fingerprints
from modeltrace.lineage.comparison import Comparison

SHARED_EXPERT = -1  # fingerprint.roles.SHARED_EXPERT
#: name -> (routed experts per MoE layer, value rows per attention layer, residual sample)
SHAPES = {"v4": (4, 128, True), "8-experts": (8, 64, False)}
_T = TypeVar("_T")
SAVED: dict[str, dict[str, Any]] = {}  # --save-json: every comparison's as_dict()


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def kimi_shaped(
    seed: int, *, layers: int, shape: str = "v4", units: int = 128, anchors: int = 320, hidden: int = 512,
    parent: dict[str, np.ndarray] | None = None, noise: float = 0.2,
) -> tuple[Fingerprint, dict[str, np.ndarray]]:  # fmt: skip
    """A fingerprint of Kimi K2's shape; ``parent`` (weights of another call) makes it a fine-tuned child."""
    experts, value_rows, residual = SHAPES[shape]
    rng = np.random.default_rng(seed)
    keys = [(0, None)] + [(layer, e) for layer in range(1, layers) for e in (SHARED_EXPERT, *range(experts))]
    weights: dict[str, np.ndarray] = {}

    def draw(name: str, shape: tuple[int, ...]) -> np.ndarray:
        fresh = rng.standard_normal(shape).astype(np.float32)
        weights[name] = fresh if parent is None else parent[name] + noise * fresh
        return weights[name]

    embed = draw("embed", (anchors, hidden))
    blocks = []
    for layer, expert in keys:
        rows = np.sort(np.random.default_rng([layer, 0 if expert is None else expert + 2]).choice(
            2048, units, replace=False)).astype(np.int64)  # fmt: skip
        up = draw(f"{layer}.{expert}.up", (units, hidden)) @ embed.T
        gate = draw(f"{layer}.{expert}.gate", (units, hidden)) @ embed.T
        blocks.append(BlockSample(layer, expert, 2048, rows, up, gate, [f"layers.{layer}.mlp"], _digest(up)))
    attention = []
    for layer in range(layers):
        value = draw(f"{layer}.value", (value_rows, hidden)) @ embed.T
        attention.append(
            AttentionSample(layer, 1024, np.arange(value_rows), value, f"layers.{layer}.v", _digest(value))
        )
    header = {"model": {"name": f"kimi-shaped-{seed}"}, "role_method": "names", "tokenizer_digest": "t"}
    anchor_list = [(row, None) for row in range(anchors)]
    sample = ResidualSample.from_frame(embed, min(512, hidden), 0) if residual else None
    return Fingerprint(header, None, anchor_list, embed @ embed.T, blocks, attention, sample), weights


def _timed(work: Callable[[], _T]) -> tuple[_T, float, float]:
    """``work()``, wall seconds and CPU seconds of this process (every thread)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _cli(suspect: Path, base: Path) -> tuple[str, float, float]:
    """`modeltrace compare SUSPECT BASE` in a fresh process: its output, wall and CPU seconds."""
    command = [str(Path(sys.executable).with_name("modeltrace")), "compare", str(suspect), str(base)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout, wall, cpu


def _pairs(result: Comparison) -> list[tuple[str, str]]:
    return [(entry["suspect"], entry["base"]) for entry in result.block_map]


def _row(source: str, blocks: int, label: str, method: str, wall: float, cpu: float, result: Any,
         same: str = "") -> str:  # fmt: skip
    if isinstance(result, Comparison):
        compared = (result.pairing or {}).get("block_pairs_compared", "-")
        shown = "-" if result.log10_p is None else f"{result.log10_p:.2f}"
        verdict = result.verdict
    else:  # the CLI's first line: "VERDICT  p = P (exact, TEST)"
        words = str(result).split()
        compared, verdict, shown = "-", words[0] if words else "?", "".join(words[1:4])
    return (
        f"{source:<18} {blocks:>6} {label:<20} {method:<10} {wall:>7.2f} {cpu:>7.2f} "
        f"{compared!s:>9} {verdict:<10} {shown:>11} {same:>5}"
    )


@contextmanager
def _saved(fingerprints: dict[str, Fingerprint]) -> Iterator[dict[str, Path]]:
    """The fingerprints written to a temporary folder (for the CLI, which reads files)."""
    with tempfile.TemporaryDirectory(prefix="compare-speed-") as folder:
        paths = {}
        for name, fingerprint in fingerprints.items():
            paths[name] = Path(folder) / f"{name}.mtfp"
            fingerprint.save(paths[name])
        yield paths


def _verdict_line(stdout: str) -> str:
    return next((line.strip() for line in stdout.splitlines() if line.strip()), "?")


def _compare_rows(source: str, models: dict[str, Fingerprint], args: argparse.Namespace) -> None:
    base = models["base"]
    for label, name in (("child vs base", "child"), ("independent vs base", "independent")):
        reference = None
        for method in ("exhaustive", "shortlist") if args.exhaustive else ("shortlist",):
            # workers only when given: the script also runs against older code (PYTHONPATH), for --save-json
            threads = {} if args.workers is None else {"workers": args.workers}
            work = functools.partial(
                compare_fingerprints, models[name], base, pairing_method=method, **threads
            )
            result, wall, cpu = _timed(work)
            if args.save_json is not None:
                SAVED[f"{source} {label} {method}"] = result.as_dict()
            same = "" if reference is None else ("yes" if _pairs(result) == _pairs(reference) else "no")
            reference = reference or result
            print(_row(source, len(base.blocks), label, method, wall, cpu, result, same), flush=True)


def _identify_rows(source: str, models: dict[str, Fingerprint], args: argparse.Namespace) -> None:
    """The child against the base and the independent model, as ``identify`` compares one suspect with
    its candidates: without and with a feature cache (the suspect's features whitened once)."""
    from modeltrace.lineage.features import FeatureCache  # here: the rest also runs on older code

    threads = {} if args.workers is None else {"workers": args.workers}
    for label, cache in (("no cache", None), ("cache", FeatureCache())):

        def both(cache: Any = cache) -> list[Comparison]:
            return [compare_fingerprints(models["child"], models[name], feature_cache=cache, **threads)
                    for name in ("base", "independent")]  # fmt: skip

        results, wall, cpu = _timed(both)
        verdicts = "/".join(result.verdict for result in results)
        print(_row(source, len(models["base"].blocks), "child vs 2 bases", label, wall, cpu, verdicts))


def _cli_rows(source: str, blocks: int, paths: dict[str, Path]) -> None:
    for label, name in (("child vs base", "child"), ("independent vs base", "independent")):
        stdout, wall, cpu = _cli(paths[name], paths["base"])
        print(_row(source, blocks, label, "CLI", wall, cpu, _verdict_line(stdout)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", default="61", help="comma-separated layer counts (61: Kimi K2)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="v4",
                        help="v4: 4 routed experts per layer as format 4 samples (default); "
                             "8-experts: the earlier synthetic shape")  # fmt: skip
    parser.add_argument(
        "--anchors", type=int, default=320, help="anchor tokens (320: a model with its tokenizer)"
    )
    parser.add_argument("--fingerprints", nargs=3, metavar=("BASE", "CHILD", "INDEPENDENT"), type=Path,
                        help="time these fingerprint files instead of synthetic ones")  # fmt: skip
    parser.add_argument("--exhaustive", action="store_true", help="also time the exhaustive pairing")
    parser.add_argument("--skip-old", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument("--cli", action="store_true", help="also time `modeltrace compare A B` end to end")
    parser.add_argument("--identify", action="store_true", help="also time one suspect against two bases")
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads (1 as in the CLI)")
    parser.add_argument(
        "--workers", type=int, default=None, help="comparison threads (default: the cores, <= 4)"
    )
    parser.add_argument(
        "--save-json", type=Path, help="write every comparison's as_dict() here (to diff two runs)"
    )
    args = parser.parse_args()
    header = (
        f"{'source':<18} {'blocks':>6} {'pair':<20} {'pairing':<10} {'wall s':>7} {'cpu s':>7} "
        f"{'compared':>9} {'verdict':<10} {'log10 p':>11} {'same':>5}"
    )
    print(header + "\n" + "-" * len(header))
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        if args.fingerprints:
            names = ("base", "child", "independent")
            loaded = {}
            for name, path in zip(names, args.fingerprints, strict=True):
                loaded[name], wall, cpu = _timed(functools.partial(load_fingerprint, path))
                print(_row("files", len(loaded[name].blocks), f"load {name}", "-", wall, cpu, "loaded"))
            _compare_rows("files", loaded, args)
            if args.identify:
                _identify_rows("files", loaded, args)
            if args.cli:
                _cli_rows(
                    "files", len(loaded["base"].blocks), dict(zip(names, args.fingerprints, strict=True))
                )
        else:
            for layers in (int(text) for text in args.layers.split(",")):
                base, weights = kimi_shaped(1, layers=layers, shape=args.shape, anchors=args.anchors)
                child, _ = kimi_shaped(
                    2, layers=layers, shape=args.shape, anchors=args.anchors, parent=weights
                )
                other, _ = kimi_shaped(3, layers=layers, shape=args.shape, anchors=args.anchors)
                models = {"base": base, "child": child, "independent": other}
                source = (
                    f"{args.shape} {layers}L {args.anchors}a"  # e.g. "v4 61L 320a": shape, layers, anchors
                )
                _compare_rows(source, models, args)
                if args.identify:
                    _identify_rows(source, models, args)
                if args.cli:
                    with _saved(models) as paths:
                        _cli_rows(source + " file", len(base.blocks), paths)
    if args.save_json is not None:
        args.save_json.write_text(json.dumps(SAVED, sort_keys=True))
    print(
        f"\nBLAS threads {args.blas_threads}, comparison workers "
        f"{'default' if args.workers is None else args.workers}; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
