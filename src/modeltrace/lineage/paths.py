"""The two tests of the lineage engine, on whitened unit features of paired MLP blocks.

* **Exact path** (:func:`exact_test`): for block pairs holding the same units (same unit count, so the
  same seeded rows), match S's units to B's by maximum-weight assignment on cosine similarity and
  count fixed points. Under "independently initialised" the matching is a uniform random permutation
  (unit exchangeability), so the randomised p-value is exactly uniform; layers combine by Fisher.
  Valid whatever was done to S; powerful unless S's units were permuted or pruned.
* **Unit-sign test** (:func:`sign_test`, gated MLPs only): for any block pair, even when S's units
  were permuted or pruned. In a gated MLP ``down · (act(gate x) ⊙ up x)``, flipping the sign of one
  unit's ``up`` row and ``down`` column changes nothing the network computes; the initialisation law
  is symmetric and every elementwise optimiser is equivariant under that flip, so under
  "independently initialised" each of B's units carries an independent fair coin for its ``up`` sign,
  whatever data both models saw (shared "universal" features are learnt up to this coin). Match units
  one-to-one on a similarity blind to those signs (gate cosine + |up cosine|); the signs of the matched
  up cosines are then independent fair coins, and their number of positives is Binomial(n, 1/2).
  Derivatives keep the sign (all matched units agree); only a deliberate per-unit sign flip hides it.
* **Value-sign test** (:func:`value_sign_test`, any attention with a named value projection): the same
  argument on attention. Flipping the sign of one value dimension (a row of ``W_v``, its bias, and the
  matching column of ``W_o`` in every query head that reads it) changes nothing the network computes,
  rotary embeddings never touch values, and neither initialisation nor an elementwise optimiser can
  tell the two signs apart. So under "independently initialised" each of B's value dimensions carries
  its own fair coin. Matching S's sampled value rows to B's on |cosine| (blind to the coins) and
  counting positive matched cosines gives Binomial(n, 1/2), whatever the MLP is (GELU MLPs have no
  sign symmetry of their own) and whatever order S's heads or MLP units are in. Multi-head latent
  attention has the same symmetry on the value rows of ``kv_b_proj`` with the matching ``o_proj``
  columns (see :mod:`modeltrace.fingerprint.mla`); the test does not care which projection the rows
  came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from modeltrace.lineage.exact import binomial_half_log_p, fisher_log_p, pair_uniform, randomised_log_p
from modeltrace.lineage.features import sign_blind_similarity


@dataclass
class ExactResult:
    log_p: float
    pairs: list[dict[str, object]] = field(default_factory=list)
    matched_cosine: float = 0.0  # mean cosine between identically indexed units (effect size)


@dataclass
class SignResult:
    log_p: float
    positive: int  # matched unit pairs whose up projections point the same way
    total: int  # matched unit pairs (each B unit at most once, so their signs are independent coins)
    pairs: list[dict[str, object]] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.positive / self.total if self.total else 0.0


def exact_test(
    unit_similarity: Callable[[int, int], np.ndarray],
    pairs: list[tuple[int, int]],
    keys: list[tuple[str, str]],
) -> ExactResult:
    """Fixed-point test on ``pairs`` (S block, B block), each B block used at most once.
    ``unit_similarity(a, b)`` is the units-by-units similarity of S block a and B block b."""
    log_ps: list[float] = []
    details: list[dict[str, object]] = []
    diagonal: list[float] = []
    for (a, b), (key_s, key_b) in zip(pairs, keys, strict=True):
        cosine = unit_similarity(a, b)
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


def _count_matched_signs(
    pairs: list[tuple[int, int]],
    matched_cosines: Callable[[int, int], np.ndarray],
    u: float,
    names: tuple[str, str, str],
    labels: list[tuple[int, int]] | None = None,
) -> SignResult:
    """Pool the signs of matched cosines over ``pairs`` into one Binomial(n, 1/2) test.
    ``matched_cosines(a, b)`` matches S's and B's rows blind to B's sign coins and returns the signed
    cosines of the matched rows; ``names`` are the detail keys (S side, B side, count), ``labels`` what
    the details call each pair (default: the pair itself)."""
    positive = total = 0
    details: list[dict[str, object]] = []
    for (a, b), (label_a, label_b) in zip(pairs, labels or pairs, strict=True):
        matched = matched_cosines(a, b)
        pair_positive, pair_total = int(np.sum(matched > 0)), int(np.sum(matched != 0))
        positive, total = positive + pair_positive, total + pair_total
        details.append(
            {
                names[0]: label_a,
                names[1]: label_b,
                names[2]: pair_total,
                "positive_signs": pair_positive,
                "median_cosine": float(np.median(matched)) if len(matched) else 0.0,
            }
        )
    return SignResult(binomial_half_log_p(total, positive, u), positive, total, details)


def sign_test(
    suspect_up: list[np.ndarray],
    suspect_gate: list[np.ndarray],
    base_up: list[np.ndarray],
    base_gate: list[np.ndarray],
    pairs: list[tuple[int, int]],
    u: float,
    score: Callable[[int, int], np.ndarray] | None = None,
) -> SignResult:
    """Unit-sign test on ``pairs`` (S block, B block), each B block used at most once (see module doc).
    ``score(a, b)``: the sign-blind similarity of the pair's units if already at hand."""

    def matched_up_cosines(a: int, b: int) -> np.ndarray:
        if score is None:
            similarity = sign_blind_similarity(suspect_up[a], suspect_gate[a], base_up[b], base_gate[b])
        else:
            similarity = score(a, b)
        rows, cols = linear_sum_assignment(-similarity)  # one-to-one: each B unit's sign enters once
        return np.sum(suspect_up[a][rows] * base_up[b][cols], axis=1)

    return _count_matched_signs(
        pairs, matched_up_cosines, u, ("suspect_block", "base_block", "matched_units")
    )


def value_sign_test(
    suspect_values: list[np.ndarray],
    base_values: list[np.ndarray],
    pairs: list[tuple[int, int]],
    u: float,
    layers: list[tuple[int, int]] | None = None,
) -> SignResult:
    """Value-sign test on ``pairs`` (S attention sample, B attention sample), each B sample used at most
    once (see module doc). ``*_values`` are whitened, row-normalised value-row features per sample;
    ``layers`` names each pair's (S layer, B layer) in the details."""

    def matched_value_cosines(a: int, b: int) -> np.ndarray:
        cosine = suspect_values[a] @ base_values[b].T
        rows, cols = linear_sum_assignment(-np.abs(cosine))  # blind to B's coins; each B row once
        return cosine[rows, cols]

    names = ("suspect_layer", "base_layer", "matched_dimensions")
    return _count_matched_signs(pairs, matched_value_cosines, u, names, layers)
