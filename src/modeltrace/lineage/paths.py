"""The two tests of the lineage engine, on whitened unit features of paired MLP blocks.

* **Exact path** (:func:`exact_test`): for block pairs holding the same units (same unit count, so the
  same seeded rows), match S's units to B's by maximum-weight assignment on cosine similarity and
  count fixed points. Under "independently initialised" the matching is a uniform random permutation
  (unit exchangeability), so the randomised p-value is exactly uniform; layers combine by Fisher.
  Valid whatever was done to S; powerful unless S's units were permuted or pruned.
* **Robust path** (:func:`robust_test`, gated MLPs only): for any block pair, match each S unit to
  its best B unit on the ``up`` projection and measure the cosine of the matched units' ``gate``
  projections: separate weights, so the matching cannot manufacture agreement (held-out tokens would
  not do: with more anchors than hidden dimensions, responses on one token half determine the other).
  The statistic is calibrated against an empirical null panel: surrogates that pair each S unit with
  a random B unit (keeping both models' marginal structure, breaking only the up-to-gate link) plus
  cross-layer pairs (S block vs a different B block). The p-value has a floor of 1/(N+1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from modeltrace.lineage.exact import fisher_log_p, pair_uniform, randomised_log_p


@dataclass
class ExactResult:
    log_p: float
    pairs: list[dict[str, object]] = field(default_factory=list)
    matched_cosine: float = 0.0  # mean cosine between identically indexed units (effect size)


@dataclass
class RobustResult:
    log_p: float
    statistic: float
    null: np.ndarray
    panel: dict[str, int]
    per_block: list[float]


def exact_test(
    suspect_features: list[np.ndarray],
    base_features: list[np.ndarray],
    pairs: list[tuple[int, int]],
    keys: list[tuple[str, str]],
) -> ExactResult:
    """Fixed-point test on ``pairs`` (S block, B block), each B block used at most once."""
    log_ps: list[float] = []
    details: list[dict[str, object]] = []
    diagonal: list[float] = []
    for (a, b), (key_s, key_b) in zip(pairs, keys, strict=True):
        cosine = suspect_features[a] @ base_features[b].T
        rows, cols = linear_sum_assignment(-cosine)
        k = cosine.shape[0]
        fixed = int(np.sum(rows == cols))
        log_p = randomised_log_p(k, fixed, pair_uniform(key_s, key_b, str(a), str(b)))
        log_ps.append(log_p)
        diagonal.append(float(np.mean(np.diag(cosine))))
        details.append(
            {
                "suspect_block": a,
                "base_block": b,
                "units": k,
                "fixed_points": fixed,
                "log10_p": log_p / math.log(10),
                "diagonal_cosine": diagonal[-1],
            }
        )
    return ExactResult(fisher_log_p(log_ps), details, float(np.mean(diagonal)) if diagonal else 0.0)


def _held_out(fit_s: np.ndarray, fit_b: np.ndarray, held_s: np.ndarray, held_b: np.ndarray) -> float:
    best = np.argmax(fit_s @ fit_b.T, axis=1)
    return float(np.median(np.sum(held_s * held_b[best], axis=1)))


def _statistic(
    fit_s: list[np.ndarray],
    held_s: list[np.ndarray],
    fit_b: list[np.ndarray],
    held_b: list[np.ndarray],
    pairs: list[tuple[int, int]],
) -> tuple[float, list[float]]:
    values = [_held_out(fit_s[a], fit_b[b], held_s[a], held_b[b]) for a, b in pairs]
    return float(np.mean(values)), values


def _surrogate_values(held_s: np.ndarray, held_b: np.ndarray, partners: np.ndarray) -> np.ndarray:
    """Held-out statistic of one block pair when each S unit is paired with a random B unit instead of
    its up-matched one (``partners``: [surrogates, units_s]). Keeps every marginal structure of both
    models (shared subspaces, norms, universal directions) and breaks only the up-to-gate link."""
    held_cos = np.einsum("ud,sud->su", held_s, held_b[partners])
    return np.median(held_cos, axis=1)


def robust_test(
    fit_s: list[np.ndarray],
    held_s: list[np.ndarray],
    fit_b: list[np.ndarray],
    held_b: list[np.ndarray],
    pairs: list[tuple[int, int]],
    surrogates: int,
    seed: int,
) -> RobustResult:
    """Held-out matching statistic and its empirical p-value (see module doc)."""
    observed, per_block = _statistic(fit_s, held_s, fit_b, held_b, pairs)
    rng = np.random.default_rng(seed)
    null_sum = np.zeros(surrogates)
    for a, b in pairs:
        for start in range(0, surrogates, 64):
            count = min(64, surrogates - start)
            partners = rng.integers(0, held_b[b].shape[0], size=(count, held_s[a].shape[0]))
            null_sum[start : start + count] += _surrogate_values(held_s[a], held_b[b], partners)
    null = list(null_sum / max(len(pairs), 1))
    count_b = len(fit_b)
    shifts = 0
    for shift in range(1, count_b):
        shifted = [(a, (b + shift) % count_b) for a, b in pairs]
        if all(fit_s[a].shape[1] == fit_b[b].shape[1] for a, b in shifted):
            null.append(_statistic(fit_s, held_s, fit_b, held_b, shifted)[0])
            shifts += 1
    null_array = np.array(null)
    exceed = int(np.sum(null_array >= observed))
    log_p = math.log((1 + exceed) / (1 + len(null_array)))
    return RobustResult(
        log_p, observed, null_array, {"random_pairing": surrogates, "cross_layer": shifts}, per_block
    )
