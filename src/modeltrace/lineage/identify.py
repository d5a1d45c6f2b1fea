"""Rank candidate bases for one suspect, with a multiple-testing correction (Holm)."""

from __future__ import annotations

import math
from typing import Any

from modeltrace.fingerprint.model import Fingerprint
from modeltrace.lineage import DEFAULT_ALPHA
from modeltrace.lineage.compare import compare_fingerprints
from modeltrace.lineage.features import FeatureCache
from modeltrace.stats import holm

_ORDER = {"same-weights": 0, "related": 1, "unrelated": 2, "inconclusive": 3}


def identify(
    suspect: Fingerprint,
    candidates: list[tuple[str, Fingerprint]],
    *,
    alpha: float = DEFAULT_ALPHA,
) -> dict[str, Any]:
    """Compare the suspect with every candidate; best (most significant) first."""
    results = []
    cache = FeatureCache()  # the suspect's features are whitened once, not once per candidate
    for name, candidate in candidates:
        result = compare_fingerprints(suspect, candidate, alpha=alpha, feature_cache=cache)
        results.append((name, result))
    natural = [None if r.log10_p is None else r.log10_p * math.log(10) for _, r in results]
    adjusted = holm(natural, log=True)
    rows = []
    for (name, result), log_adj in zip(results, adjusted, strict=True):
        verdict = result.verdict
        if verdict == "related" and (log_adj is None or log_adj >= math.log(alpha)):
            verdict = "unrelated"  # not significant once the number of candidates is accounted for
        rows.append(
            {
                "candidate": name,
                "verdict": verdict,
                "p_value": result.p_value,
                "log10_p": result.log10_p,
                "p_value_adjusted": None if log_adj is None else math.exp(log_adj),
                "log10_p_adjusted": None if log_adj is None else log_adj / math.log(10),
                "p_value_kind": result.p_value_kind,
                "relation": result.relation,
                "layer_map": result.layer_map,
                "bytes_read": result.bytes_read,
            }
        )
    rows.sort(key=lambda row: (_ORDER[row["verdict"]], row["log10_p"] if row["log10_p"] is not None else 1.0))
    closest = next((row["candidate"] for row in rows if row["verdict"] in ("same-weights", "related")), None)
    return {
        "suspect": suspect.name,
        "candidates": rows,
        "closest_ancestor": closest,
        "correction": "Holm",
        "alpha": alpha,
    }
