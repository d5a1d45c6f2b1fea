"""Compare two fingerprints: verdict, calibrated p-value, kind of derivation, layer map, evidence.

Pipeline: shared anchor tokens -> whitened unit features per MLP block -> block pairing on the block
similarity (mean best-match similarity, invariant to unit order and, for gated MLPs, to unit sign
flips; every block pair, or a shortlist per block for large MoE models: lineage/pairing.py) -> layer
map -> fixed-point test on same-shape mapped pairs, unit-sign test on mapped gated pairs, value-sign test
on the attention layers of mapped pairs (all three exact) -> Bonferroni combination of the p-values
-> verdict and relation. Pure: takes fingerprints in
memory, returns a :class:`~modeltrace.lineage.comparison.Comparison` (``as_dict()``: the JSON).
Independent pieces (each side's features, the shortlist's similarities, the tests) run on a few
threads (:mod:`modeltrace.lineage.workers`), with bit for bit the answer of one thread.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import Executor
from typing import Any

import numpy as np

from modeltrace.fingerprint.model import Fingerprint
from modeltrace.lineage import DEFAULT_ALPHA
from modeltrace.lineage.comparison import Comparison
from modeltrace.lineage.exact import pair_uniform
from modeltrace.lineage.features import (
    FeatureCache,
    SharedAnchors,
    UnitSimilarity,
    normalised_rows,
    shared_anchors,
    whitener,
)
from modeltrace.lineage.pairing import PairingMethod, pair_blocks
from modeltrace.lineage.paths import SignResult, exact_test, sign_test, value_sign_test
from modeltrace.lineage.relation import describe_relation
from modeltrace.lineage.residual import residual_test
from modeltrace.lineage.workers import gather, worker_pool

#: Fewer shared anchor tokens than this leaves too little shared structure to test.
MIN_SHARED_ANCHORS = 16
#: The unit-sign test reads which projection is ``up`` (sign-symmetric) and which is ``gate`` (not):
#: roles guessed from graph or storage order could swap them, which would void its null.
SIGN_TEST_ROLE_METHODS = ("names",)
LN10 = math.log(10)


#: Unit rows whitened per product: a chunk and its features stay in cache (the same values as one
#: product over all rows, or one per block).
_FEATURE_ROWS = 4096


def _part_rows(fp: Fingerprint, part: str) -> list[np.ndarray]:
    """Every block's ``part``: "up" or "gate" (a block without a gate: up)."""
    return [block.up if part == "up" or block.gate is None else block.gate for block in fp.blocks]


def _features(fp: Fingerprint, positions: np.ndarray, white: np.ndarray, part: str) -> list[np.ndarray]:
    """Whitened, row-normalised unit features of every block's ``part``: "up" or "gate" (a block without
    a gate: up), computed over all blocks' units in chunks and split back per block."""
    rows = _part_rows(fp, part)
    if not rows:
        return []
    if len({row.dtype for row in rows}) > 1:  # keep each block's own precision, as block by block
        return [normalised_rows(row[:, positions] @ white) for row in rows]
    stacked = np.concatenate(rows, axis=0)
    every_column = np.array_equal(positions, np.arange(stacked.shape[1]))
    out = np.empty((len(stacked), white.shape[1]), dtype=np.result_type(stacked, white))
    for first in range(0, len(stacked), _FEATURE_ROWS):
        chunk = stacked[first : first + _FEATURE_ROWS]
        out[first : first + len(chunk)] = normalised_rows(
            (chunk if every_column else chunk[:, positions]) @ white
        )
    return np.split(out, np.cumsum([len(row) for row in rows])[:-1])


def _features_of(
    fp: Fingerprint, positions: np.ndarray, white: np.ndarray, part: str, cache: FeatureCache | None
) -> list[np.ndarray]:
    """:func:`_features`, through ``cache`` when there is one."""
    if cache is None:
        return _features(fp, positions, white, part)
    compute = functools.partial(_features, fp, positions, white, part)
    return cache.get(fp, positions, white, part, _part_rows(fp, part), compute)


def _one_per_base_block(
    pairs: list[tuple[int, int]],
    similarity: np.ndarray,
    suspect: Fingerprint,
    base: Fingerprint,
    same_units: bool,
) -> list[tuple[int, int]]:
    """Mapped pairs with at most one per base block (each test's per-unit evidence must be independent),
    chosen by the similarity, which is blind to what the tests look at (unit order, unit signs), so the
    choice cannot bias them. ``same_units``: keep only pairs holding the same units (fixed-point test)."""
    best: dict[int, tuple[float, int]] = {}
    for a, b in pairs:
        s_block, b_block = suspect.blocks[a], base.blocks[b]
        same = s_block.units == b_block.units and np.array_equal(s_block.unit_rows, b_block.unit_rows)
        eligible = (same or not same_units) and len(s_block.unit_rows) >= 2
        if eligible and (b not in best or similarity[a, b] > best[b][0]):
            best[b] = (float(similarity[a, b]), a)
    return sorted((a, b) for b, (_, a) in best.items())


def _value_features(fp: Fingerprint, positions: np.ndarray, white: np.ndarray) -> list[np.ndarray]:
    """Whitened, row-normalised token-frame responses of every sampled attention layer's value rows."""
    return [normalised_rows(sample.value[:, positions] @ white) for sample in fp.attention]


def _attention_pairs(
    pairs: list[tuple[int, int]], similarity: np.ndarray, suspect: Fingerprint, base: Fingerprint
) -> list[tuple[int, int]]:
    """(S attention sample, B attention sample) for the layers the MLP layer map pairs, at most one per
    B layer (its value coins must enter once), chosen by the MLP similarity (blind to value signs)."""
    s_index = {sample.layer: i for i, sample in enumerate(suspect.attention)}
    b_index = {sample.layer: i for i, sample in enumerate(base.attention)}
    best: dict[int, tuple[float, int]] = {}
    for a, b in pairs:
        s_layer, b_layer = suspect.blocks[a].layer, base.blocks[b].layer
        if s_layer not in s_index or b_layer not in b_index:
            continue
        score = float(similarity[a, b])
        if b_layer not in best or score > best[b_layer][0]:
            best[b_layer] = (score, s_layer)
    chosen = sorted((s_index[s_layer], b_index[b_layer]) for b_layer, (_, s_layer) in best.items())
    return [(a, b) for a, b in chosen if len(suspect.attention[a].unit_rows) >= 2]


def _value_signs(
    suspect: Fingerprint, base: Fingerprint, value_features: tuple[list[np.ndarray], list[np.ndarray]],
    pairs: list[tuple[int, int]], similarity: np.ndarray,
) -> SignResult | None:  # fmt: skip
    """The value-sign test on the mapped layers; ``value_features``: each side's
    :func:`_value_features`."""
    attention_pairs = _attention_pairs(pairs, similarity, suspect, base)
    if not attention_pairs:
        return None
    # The randomisation draws on the MLP digests only: nothing that moves with B's value signs.
    u = pair_uniform("value-signs", *(suspect.blocks[a].digest + base.blocks[b].digest for a, b in pairs))
    layers = [(suspect.attention[a].layer, base.attention[b].layer) for a, b in attention_pairs]
    return value_sign_test(*value_features, attention_pairs, u, layers)


def _sign_json(result: SignResult | None, count_key: str, detail_key: str) -> dict[str, Any] | None:
    """A sign test's JSON section: counts, the exact Binomial(n, 1/2) null, per-pair details."""
    if result is None:
        return None
    return {
        "log10_p": result.log_p / LN10,
        "positive_signs": result.positive,
        count_key: result.total,
        "agreement": result.agreement,
        "null": {"distribution": "binomial", "n": result.total, "p": 0.5},
        "randomised": True,
        detail_key: result.pairs,
    }


def _same_inventory(suspect: Fingerprint, base: Fingerprint) -> bool:
    shapes = [(tuple(shape), dtype) for _, shape, dtype in suspect.header.get("inventory", [])]
    other = [(tuple(shape), dtype) for _, shape, dtype in base.header.get("inventory", [])]
    return sorted(shapes) == sorted(other)


def _same_weights(suspect: Fingerprint, base: Fingerprint) -> bool:
    # The inventory (a Kimi K2 lists ~140 000 tensors: 50 ms to sort) is compared last, when the
    # cheap tests already agree.
    return (
        bool(suspect.blocks)
        and suspect.header.get("tokenizer_digest") == base.header.get("tokenizer_digest")
        and len(suspect.blocks) == len(base.blocks)
        and all(a.digest == b.digest for a, b in zip(suspect.blocks, base.blocks, strict=True))
        and np.array_equal(suspect.anchor_gram, base.anchor_gram)
        and _same_inventory(suspect, base)
    )


def _inconclusive(reason: str, suspect: Fingerprint, base: Fingerprint) -> Comparison:
    return Comparison(
        "inconclusive", suspect.name, base.name, suspect.bytes_read + base.bytes_read, reason=reason
    )


def _why_no_test(suspect: Fingerprint, base: Fingerprint, roles_named: bool) -> str:
    """The inconclusive message: which of the four tests could not run, and what each was missing."""
    missing = []
    same_units = {(b.units, len(b.unit_rows)) for b in suspect.blocks} & {
        (b.units, len(b.unit_rows)) for b in base.blocks
    }
    if not same_units:
        missing.append("fixed-point test: no MLP layer of the same width on both sides")
    gated = all(b.gate is not None for b in suspect.blocks + base.blocks)
    if not gated:
        missing.append("unit-sign test: needs gated MLPs on both sides")
    elif not roles_named:
        missing.append("unit-sign test: up and gate projections not known by name")
    if not suspect.attention or not base.attention:
        side = " and ".join(fp.name for fp in (suspect, base) if not fp.attention)
        missing.append(f"value-sign test: no attention value projection found in {side}")
    if suspect.residual is None or base.residual is None:
        missing.append("residual-dimension test: a fingerprint older than format 3")
    elif suspect.residual.hidden != base.residual.hidden:
        sizes = f"{suspect.residual.hidden} vs {base.residual.hidden}"
        missing.append(f"residual-dimension test: hidden sizes differ ({sizes})")
    else:
        missing.append("residual-dimension test: too few live residual dimensions")
    return "no lineage test could run (" + "; ".join(missing) + ")"


def compare_fingerprints(
    suspect: Fingerprint,
    base: Fingerprint,
    *,
    alpha: float = DEFAULT_ALPHA,
    pairing_method: PairingMethod = "auto",
    workers: int | None = None,
    feature_cache: FeatureCache | None = None,
) -> Comparison:
    """Was ``suspect`` derived from ``base``? See the module doc for the pipeline. ``pairing_method``:
    how blocks are paired (:func:`modeltrace.lineage.pairing.pair_blocks`; "auto" unless measuring).
    ``workers``: threads for the independent pieces (default: the cores, at most 4; the result is bit
    for bit the same for any number, :mod:`modeltrace.lineage.workers`). ``feature_cache``: keeps
    whitened features for the next comparison with one of the same fingerprints (``identify``)."""
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
    with worker_pool(workers) as pool:
        return _tested(suspect, base, shared, alpha, pairing_method, pool, feature_cache)


def _tested(
    suspect: Fingerprint, base: Fingerprint, shared: SharedAnchors, alpha: float,
    pairing_method: PairingMethod, pool: Executor, feature_cache: FeatureCache | None,
) -> Comparison:  # fmt: skip
    """The comparison once both sides have blocks and enough shared anchors; the independent pieces
    (each side's features, the block shortlist's similarities, the four tests) run on ``pool``."""
    # One whitener per side (the anchor Gram's inverse square root), shared by every feature below.
    white_s, white_b = gather(pool, [
        functools.partial(whitener, suspect.anchor_gram[np.ix_(shared.suspect, shared.suspect)]),
        functools.partial(whitener, base.anchor_gram[np.ix_(shared.base, shared.base)]),
    ])  # fmt: skip
    frame_s, frame_b = (shared.suspect, white_s), (shared.base, white_b)
    use_gate = all(b.gate is not None for b in suspect.blocks + base.blocks)
    sides = ((suspect, frame_s), (base, frame_b))
    # The largest step: four equal products (up and gate of each side), two cores at a time.
    kinds = ("up", "gate") if use_gate else ("up",)
    features = gather(pool, [functools.partial(_features_of, fp, *frame, part, feature_cache)
                             for fp, frame in sides for part in kinds])  # fmt: skip
    value_features = gather(pool, [functools.partial(_value_features, fp, *frame) for fp, frame in sides])
    parts = None
    if use_gate:
        parts = (features[0], features[1], features[2], features[3])
        # Gated MLPs are compared on the sign-blind similarity of up and gate (``parts``) alone.
        feats_s, feats_b = parts[0], parts[2]
    else:
        feats_s, feats_b = features
    unit_similarity = UnitSimilarity(feats_s, feats_b, parts)
    pairing = pair_blocks(suspect, base, unit_similarity, pairing_method, pool)
    similarity, pairs = pairing.similarity, pairing.pairs

    exact_pairs = _one_per_base_block(pairs, similarity, suspect, base, same_units=True)
    keys = [(suspect.blocks[a].digest, base.blocks[b].digest) for a, b in exact_pairs]
    roles_named = all(fp.header.get("role_method") in SIGN_TEST_ROLE_METHODS for fp in (suspect, base))
    sign_pairs = _one_per_base_block(pairs, similarity, suspect, base, same_units=False)
    signs_pending = None
    if parts is not None and roles_named and sign_pairs:
        u = pair_uniform(
            "unit-signs", *(suspect.blocks[a].digest + base.blocks[b].digest for a, b in sign_pairs)
        )
        signs_pending = pool.submit(sign_test, *parts, sign_pairs, u, unit_similarity)
    exact_pending = pool.submit(exact_test, unit_similarity, exact_pairs, keys) if exact_pairs else None
    values_pending = pool.submit(_value_signs, suspect, base, (value_features[0], value_features[1]),
                                 pairs, similarity)  # fmt: skip
    residual = residual_test(suspect, base, shared)
    exact = None if exact_pending is None else exact_pending.result()
    signs = None if signs_pending is None else signs_pending.result()
    values = values_pending.result()
    if exact is None and signs is None and values is None and residual is None:
        return _inconclusive(_why_no_test(suspect, base, roles_named), suspect, base)
    candidates = (
        ([("unit-signs", signs.log_p)] if signs else [])
        + ([("value-signs", values.log_p)] if values else [])
        + ([("fixed-points", exact.log_p)] if exact else [])
        + ([("residual-dims", residual.log_p)] if residual else [])
    )
    test, best_log_p = min(candidates, key=lambda item: item[1])
    log_p = min(0.0, best_log_p + math.log(len(candidates)))  # Bonferroni over the paths tried
    same = _same_weights(suspect, base)
    verdict = "same-weights" if same else ("related" if log_p < math.log(alpha) else "unrelated")
    relation = describe_relation(suspect, base, pairs, verdict, exact, signs, alpha, values, residual)
    mapped_similarity = float(np.mean([similarity[a, b] for a, b in pairs]))
    return Comparison(
        verdict=verdict,
        p_value=math.exp(log_p),
        log10_p=log_p / LN10,
        p_value_kind="exact",  # every test has an exact null: no panel, no floor
        p_value_test=test,
        paths_tried=[name for name, _ in candidates],
        alpha=alpha,
        relation=relation["relation"],
        relations=relation["relations"],
        direction=relation["direction"],
        direction_evidence=relation["direction_evidence"],
        structure=relation["structure"],
        layer_map=relation["layer_map"],
        block_map=[
            {
                "suspect": suspect.blocks[a].label,
                "base": base.blocks[b].label,
                "similarity": float(similarity[a, b]),
            }
            for a, b in pairs
        ],
        effect_size={
            "mapped_similarity": mapped_similarity,
            "sign_agreement": None if signs is None else signs.agreement,
            "value_sign_agreement": None if values is None else values.agreement,
            "diagonal_cosine": exact.matched_cosine if exact else None,
            "residual_diagonal_cosine": None if residual is None else residual.matched_cosine,
        },
        exact=None
        if exact is None
        else {
            "log10_p": exact.log_p / LN10,
            "layers": len(exact.pairs),
            "combination": "Fisher",
            "per_layer": exact.pairs,
        },
        unit_signs=_sign_json(signs, "matched_units", "per_block"),
        value_signs=_sign_json(values, "matched_dimensions", "per_layer"),
        residual_dims=None if residual is None else residual.as_dict(),
        similarity_matrix={
            "suspect_blocks": [b.label for b in suspect.blocks],
            "base_blocks": [b.label for b in base.blocks],
            "values": pairing.values(),
        },
        pairing=pairing.as_dict(),
        shared_anchors={
            "count": len(shared.suspect),
            "by_string": shared.by_string,
            "by_row": shared.by_row,
        },
        tensors_used={
            "suspect": sorted({t for b in suspect.blocks for t in b.tensors})[:50],
            "base": sorted({t for b in base.blocks for t in b.tensors})[:50],
        },
        bytes_read=suspect.bytes_read + base.bytes_read,
        bytes_read_detail={
            "suspect": suspect.bytes_read,
            "base": base.bytes_read,
            "suspect_total": suspect.header.get("total_bytes"),
            "base_total": base.header.get("total_bytes"),
        },
        suspect=suspect.name,
        base=base.name,
    )
