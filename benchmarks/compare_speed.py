"""How fast `compare` is on Kimi-K2-shaped fingerprints: the exhaustive block pairing (every block pair,
as before the shortlist) against the shortlist pairing, side by side in one run, with the verdicts,
p-values and block pairings of both.

The fingerprints are built in memory with the shape a Kimi K2 fingerprint has (61 layers: 1 dense
layer, 60 MoE layers each with the shared expert and 8 sampled routed experts, so 541 MLP blocks of
128 sampled units, 320 anchor tokens, 61 attention value samples): a base, a fine-tuned child (base
plus noise) and an independent model. ``--layers`` takes several sizes; 61 is the full shape (the
exhaustive path takes minutes there). BLAS runs on one thread, as in the CLI.

    .venv/bin/python benchmarks/compare_speed.py --layers 5,9,17,61
    .venv/bin/python benchmarks/compare_speed.py --layers 61 --skip-old   # the new path only
"""

from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np
from threadpoolctl import threadpool_limits

from modeltrace.fingerprint.model import AttentionSample, BlockSample, Fingerprint
from modeltrace.lineage.compare import compare_fingerprints
from modeltrace.lineage.comparison import Comparison

SHARED_EXPERT = -1  # fingerprint.roles.SHARED_EXPERT


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def kimi_shaped(
    seed: int, *, layers: int, units: int = 128, anchors: int = 320, hidden: int = 512,
    parent: dict[str, np.ndarray] | None = None, noise: float = 0.2,
) -> tuple[Fingerprint, dict[str, np.ndarray]]:  # fmt: skip
    """A fingerprint of Kimi K2's shape; ``parent`` (weights of another call) makes it a fine-tuned child."""
    rng = np.random.default_rng(seed)
    keys = [(0, None)] + [(layer, e) for layer in range(1, layers) for e in (SHARED_EXPERT, *range(8))]
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
        value = draw(f"{layer}.value", (64, hidden)) @ embed.T
        attention.append(
            AttentionSample(layer, 1024, np.arange(64), value, f"layers.{layer}.v", _digest(value))
        )
    header = {"model": {"name": f"kimi-shaped-{seed}"}, "role_method": "names", "tokenizer_digest": "t"}
    anchor_list = [(row, None) for row in range(anchors)]
    return Fingerprint(header, None, anchor_list, embed @ embed.T, blocks, attention), weights


def _timed(suspect: Fingerprint, base: Fingerprint, method: str) -> tuple[Comparison, float, float]:
    """One comparison: the result, wall seconds and CPU seconds of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = compare_fingerprints(suspect, base, pairing_method=method)  # type: ignore[arg-type]
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _pairs(result: Comparison) -> list[tuple[str, str]]:
    return [(entry["suspect"], entry["base"]) for entry in result.block_map]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", default="61", help="comma-separated layer counts (61: Kimi K2)")
    parser.add_argument("--skip-old", action="store_true", help="time only the shortlist pairing")
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads (1 as in the CLI)")
    args = parser.parse_args()
    header = (
        f"{'layers':>6} {'blocks':>6} {'pair':<20} {'pairing':<10} {'wall s':>7} {'cpu s':>7} "
        f"{'compared':>9} {'verdict':<10} {'log10 p':>11} {'same pairs':>10}"
    )
    print(header + "\n" + "-" * len(header))
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        for layers in (int(text) for text in args.layers.split(",")):
            base, weights = kimi_shaped(1, layers=layers)
            child, _ = kimi_shaped(2, layers=layers, parent=weights)
            other, _ = kimi_shaped(3, layers=layers)
            for label, suspect in (("child vs base", child), ("independent vs base", other)):
                old = None
                for method in ("shortlist",) if args.skip_old else ("exhaustive", "shortlist"):
                    result, wall, cpu = _timed(suspect, base, method)
                    same = "" if old is None else ("yes" if _pairs(result) == _pairs(old) else "no")
                    old = old or result
                    log10_p = result.log10_p
                    shown = "-" if log10_p is None else f"{log10_p:.2f}"
                    compared = (result.pairing or {}).get("block_pairs_compared")
                    print(
                        f"{layers:>6} {len(base.blocks):>6} {label:<20} {method:<10} {wall:>7.2f} "
                        f"{cpu:>7.2f} {compared:>9} {result.verdict:<10} {shown:>11} {same:>10}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
