"""How fast `compare` is on two Kimi-K2-shaped fingerprints: the batched block similarity against the
per-pair reference, side by side in one run, with the verdicts and p-values of both.

The fingerprints are built in memory with the shape a Kimi K2 fingerprint has (61 layers: 1 dense
layer, 60 MoE layers each with the shared expert and 8 sampled routed experts, so 541 MLP blocks of
128 sampled units, 320 anchor tokens, 61 attention value samples): a base, a fine-tuned child (base
plus noise) and an independent model.

    .venv/bin/python benchmarks/compare_speed.py            # the Kimi K2 shape (the old path takes minutes)
    .venv/bin/python benchmarks/compare_speed.py --layers 9 # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np

from modeltrace.fingerprint.model import AttentionSample, BlockSample, Fingerprint
from modeltrace.lineage import compare as compare_module
from modeltrace.lineage.compare import compare_fingerprints
from modeltrace.lineage.features import pairwise_block_similarity

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


def _reference(feats_s: list[np.ndarray], feats_b: list[np.ndarray], parts: Any) -> np.ndarray:
    if parts is None:
        return pairwise_block_similarity(feats_s, feats_b)
    up_s, gate_s, up_b, gate_b = parts
    return pairwise_block_similarity(up_s, up_b, gate_s, gate_b)


def _timed(
    run: Callable[[], dict[str, Any]], block_similarity: Any
) -> tuple[dict[str, Any], float, np.ndarray]:
    """Run one comparison with ``block_similarity`` in place, keeping the similarity matrix it made."""
    kept: list[np.ndarray] = []

    def recording(*args: Any) -> np.ndarray:
        kept.append(block_similarity(*args))
        return kept[-1]

    with mock.patch.object(compare_module, "_block_similarity", recording):
        start = time.perf_counter()
        result = run()
        return result, time.perf_counter() - start, kept[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=61, help="layers (61: Kimi K2)")
    parser.add_argument("--skip-old", action="store_true", help="time only the batched path")
    args = parser.parse_args()
    batched = compare_module._block_similarity
    base, weights = kimi_shaped(1, layers=args.layers)
    child, _ = kimi_shaped(2, layers=args.layers, parent=weights)
    other, _ = kimi_shaped(3, layers=args.layers)
    print(
        f"{len(base.blocks)} MLP blocks x {len(base.blocks[0].unit_rows)} units, "
        f"{len(base.anchors)} anchors\n"
    )
    print(f"{'pair':<22} {'path':<9} {'seconds':>8} {'verdict':<10} {'log10 p':>10} {'max |dsim|':>11}")
    for label, suspect in (("child vs base", child), ("independent vs base", other)):
        new, new_s, new_sim = _timed(lambda s=suspect: compare_fingerprints(s, base), batched)
        rows = [("batched", new, new_s)]
        if not args.skip_old:
            old, old_s, old_sim = _timed(lambda s=suspect: compare_fingerprints(s, base), _reference)
            rows.insert(0, ("per-pair", old, old_s))
        for path, result, seconds in rows:
            diff = ""
            if path == "batched" and not args.skip_old:
                same = all(result[key] == old[key] for key in ("verdict", "log10_p", "block_map"))
                diff = f"{np.abs(new_sim - old_sim).max():.1e}{'' if same else ' DIFFERS'}"
            log10_p = result["log10_p"]
            shown = "-" if log10_p is None else f"{log10_p:.2f}"
            print(f"{label:<22} {path:<9} {seconds:>8.2f} {result['verdict']:<10} {shown:>10} {diff:>11}")


if __name__ == "__main__":
    main()
