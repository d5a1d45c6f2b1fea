"""Compare two fingerprints: verdict, calibrated p-value, kind of derivation, layer map, evidence.

Pipeline: shared anchor tokens -> whitened unit features per MLP block -> block similarity matrix
(mean best-match cosine, invariant to unit order) -> layer map -> exact test on same-shape mapped
pairs and robust test on all mapped pairs -> Bonferroni combination of the two p-values -> verdict
and relation. Pure: takes fingerprints in memory, returns a JSON-ready dict.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from modeltrace.fingerprint.model import Fingerprint
from modeltrace.lineage.exact import pair_uniform
from modeltrace.lineage.features import best_match_similarity, shared_anchors, unit_features, whitener
from modeltrace.lineage.paths import exact_test, robust_test
from modeltrace.lineage.relation import describe_relation

DEFAULT_ALPHA = 0.01
DEFAULT_SURROGATES = 499
#: Fewer shared anchor tokens than this leaves too little shared structure to test.
MIN_SHARED_ANCHORS = 16
#: The robust path's cost grows with blocks x surrogates; beyond this, evenly spaced blocks are used.
MAX_ROBUST_BLOCKS = 16
LN10 = math.log(10)


def _features(fp: Fingerprint, positions: np.ndarray, parts: str) -> list[np.ndarray]:
    """Whitened unit features of every block: ``parts`` is "both" (up and gate), "up" or "gate"."""
    white = whitener(fp.anchor_gram[np.ix_(positions, positions)])
    out = []
    for block in fp.blocks:
        if parts == "up":
            block = replace(block, gate=None)
        elif parts == "gate" and block.gate is not None:
            block = replace(block, up=block.gate, gate=None)
        out.append(unit_features(block, positions, white))
    return out


def _layer_pairs(similarity: np.ndarray, suspect: Fingerprint, base: Fingerprint) -> list[tuple[int, int]]:
    """Each suspect block's base block. Dense-to-dense with no more suspect layers than base layers is a
    one-to-one assignment (dropped layers); otherwise each block takes its most similar base block
    (duplicated layers, experts upcycled from one dense MLP)."""
    dense = all(b.expert is None for b in suspect.blocks) and all(b.expert is None for b in base.blocks)
    if dense and len(suspect.blocks) <= len(base.blocks):
        rows, cols = linear_sum_assignment(-similarity)
        return sorted(zip(rows.tolist(), cols.tolist(), strict=True))
    return [(a, int(np.argmax(similarity[a]))) for a in range(len(suspect.blocks))]


def _exact_pairs(
    pairs: list[tuple[int, int]], similarity: np.ndarray, suspect: Fingerprint, base: Fingerprint
) -> list[tuple[int, int]]:
    """Mapped pairs holding the same units, at most one per base block (Fisher needs independence),
    chosen by the unit-order-invariant similarity so the choice cannot bias the exact test."""
    best: dict[int, tuple[float, int]] = {}
    for a, b in pairs:
        s_block, b_block = suspect.blocks[a], base.blocks[b]
        same_units = s_block.units == b_block.units and np.array_equal(s_block.unit_rows, b_block.unit_rows)
        if same_units and len(s_block.unit_rows) >= 2 and (b not in best or similarity[a, b] > best[b][0]):
            best[b] = (float(similarity[a, b]), a)
    return sorted((a, b) for b, (_, a) in best.items())


def _robust_subset(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if len(pairs) <= MAX_ROBUST_BLOCKS:
        return pairs
    picks = np.linspace(0, len(pairs) - 1, MAX_ROBUST_BLOCKS).round().astype(int)
    return [pairs[i] for i in sorted(set(picks.tolist()))]


def _same_weights(suspect: Fingerprint, base: Fingerprint) -> bool:
    shapes = [(tuple(shape), dtype) for _, shape, dtype in suspect.header.get("inventory", [])]
    other = [(tuple(shape), dtype) for _, shape, dtype in base.header.get("inventory", [])]
    return (
        bool(suspect.blocks)
        and sorted(shapes) == sorted(other)
        and suspect.header.get("tokenizer_digest") == base.header.get("tokenizer_digest")
        and len(suspect.blocks) == len(base.blocks)
        and all(a.digest == b.digest for a, b in zip(suspect.blocks, base.blocks, strict=True))
        and np.array_equal(suspect.anchor_gram, base.anchor_gram)
    )


def _inconclusive(reason: str, suspect: Fingerprint, base: Fingerprint) -> dict[str, Any]:
    return {
        "verdict": "inconclusive",
        "p_value": None,
        "log10_p": None,
        "p_value_kind": None,
        "relation": None,
        "relations": [],
        "direction": None,
        "layer_map": {},
        "reason": reason,
        "bytes_read": suspect.bytes_read + base.bytes_read,
        "suspect": suspect.name,
        "base": base.name,
    }


def compare_fingerprints(
    suspect: Fingerprint,
    base: Fingerprint,
    *,
    alpha: float = DEFAULT_ALPHA,
    surrogates: int = DEFAULT_SURROGATES,
) -> dict[str, Any]:
    """Was ``suspect`` derived from ``base``? See the module doc for the pipeline."""
    shared = shared_anchors(suspect, base)
    if not suspect.blocks or not base.blocks:
        return _inconclusive("no MLP blocks found in one of the models", suspect, base)
    if len(shared.suspect) < MIN_SHARED_ANCHORS:
        return _inconclusive(
            f"only {len(shared.suspect)} anchor tokens in common (need {MIN_SHARED_ANCHORS}): the "
            "vocabularies share too little to align the models",
            suspect,
            base,
        )
    use_gate = all(b.gate is not None for b in suspect.blocks + base.blocks)
    feats_s = _features(suspect, shared.suspect, "both" if use_gate else "up")
    feats_b = _features(base, shared.base, "both" if use_gate else "up")
    similarity = np.array([[best_match_similarity(fs, fb) for fb in feats_b] for fs in feats_s])
    pairs = _layer_pairs(similarity, suspect, base)

    exact_pairs = _exact_pairs(pairs, similarity, suspect, base)
    keys = [(suspect.blocks[a].digest, base.blocks[b].digest) for a, b in exact_pairs]
    exact = exact_test(feats_s, feats_b, exact_pairs, keys) if exact_pairs else None

    robust_pairs = _robust_subset(pairs)
    robust = None
    if use_gate:
        seed = int(pair_uniform(suspect.blocks[0].digest, base.blocks[0].digest) * 2**32)
        robust = robust_test(
            _features(suspect, shared.suspect, "up"),
            _features(suspect, shared.suspect, "gate"),
            _features(base, shared.base, "up"),
            _features(base, shared.base, "gate"),
            robust_pairs,
            surrogates,
            seed,
        )
    if exact is None and robust is None:
        return _inconclusive(
            "no layer pair holds the same units and the MLPs have no gate projection to test on; "
            "compare with --full or against the full models",
            suspect,
            base,
        )
    candidates = ([("empirical", robust.log_p)] if robust else []) + (
        [("exact", exact.log_p)] if exact else []
    )
    kind, best_log_p = min(candidates, key=lambda item: item[1])
    log_p = min(0.0, best_log_p + math.log(len(candidates)))  # Bonferroni over the paths tried
    same = _same_weights(suspect, base)
    verdict = "same-weights" if same else ("related" if log_p < math.log(alpha) else "unrelated")
    relation = describe_relation(suspect, base, pairs, verdict, exact, robust, alpha)
    mapped_similarity = float(np.mean([similarity[a, b] for a, b in pairs]))
    floor = None if robust is None else 1.0 / (1 + len(robust.null))
    return {
        "verdict": verdict,
        "p_value": math.exp(log_p),
        "log10_p": log_p / LN10,
        "p_value_kind": kind,
        "alpha": alpha,
        "relation": relation["relation"],
        "relations": relation["relations"],
        "direction": relation["direction"],
        "direction_evidence": relation["direction_evidence"],
        "layer_map": relation["layer_map"],
        "block_map": [
            {
                "suspect": suspect.blocks[a].label,
                "base": base.blocks[b].label,
                "similarity": float(similarity[a, b]),
            }
            for a, b in pairs
        ],
        "effect_size": {
            "mapped_similarity": mapped_similarity,
            "held_out_cosine": None if robust is None else robust.statistic,
            "null_median_held_out_cosine": None if robust is None else float(np.median(robust.null)),
            "diagonal_cosine": exact.matched_cosine if exact else None,
        },
        "exact": None
        if exact is None
        else {
            "log10_p": exact.log_p / LN10,
            "layers": len(exact.pairs),
            "combination": "Fisher",
            "per_layer": exact.pairs,
        },
        "empirical": None
        if robust is None
        else {
            "log10_p": robust.log_p / LN10,
            "statistic": robust.statistic,
            "panel": robust.panel,
            "panel_size": len(robust.null),
            "p_floor": floor,
            "null": robust.null.tolist(),
            "per_block": robust.per_block,
            "blocks_used": len(robust_pairs),
        },
        "similarity_matrix": {
            "suspect_blocks": [b.label for b in suspect.blocks],
            "base_blocks": [b.label for b in base.blocks],
            "values": similarity.round(4).tolist(),
        },
        "shared_anchors": {
            "count": len(shared.suspect),
            "by_string": shared.by_string,
            "by_row": shared.by_row,
        },
        "tensors_used": {
            "suspect": sorted({t for b in suspect.blocks for t in b.tensors})[:50],
            "base": sorted({t for b in base.blocks for t in b.tensors})[:50],
        },
        "bytes_read": suspect.bytes_read + base.bytes_read,
        "bytes_read_detail": {
            "suspect": suspect.bytes_read,
            "base": base.bytes_read,
            "suspect_total": suspect.header.get("total_bytes"),
            "base_total": base.header.get("total_bytes"),
        },
        "suspect": suspect.name,
        "base": base.name,
    }
