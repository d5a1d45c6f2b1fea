"""Exact null distributions: fixed points of a uniformly random permutation, and Fisher's method.

Training with an elementwise optimiser from an elementwise-iid initialisation makes the hidden units
of each MLP exchangeable. If S was trained independently of B, relabelling B's units by any
permutation leaves the joint law of (S, B) unchanged, so the optimal matching between S's and B's
units is a uniformly random permutation of the kept units, and its number of fixed points F has the
rencontres distribution: ``P(F = j) = d(k - j) / j!`` with ``d(n) = sum_{i<=n} (-1)^i / i!``.
Layers have independent unit symmetries, so per-layer p-values are independent and Fisher's method
applies. All arithmetic is in logs: related models reach p = 1/128! ~ 1e-216 per layer.
"""

from __future__ import annotations

import functools
import hashlib
import math

import numpy as np


@functools.lru_cache(maxsize=4096)  # pure: a cached value is the value (every block pair has k = 128)
def _log_derangement_ratio(n: int) -> float:
    """log d(n) where d(n) = D(n)/n! is the probability that a random n-permutation has no fixed point."""
    if n == 1:
        return -math.inf
    total = sum((-1) ** i / math.factorial(i) for i in range(min(n, 170) + 1))
    return math.log(total)


def log_fixed_point_pmf(k: int, j: int) -> float:
    return _log_derangement_ratio(k - j) - math.lgamma(j + 1)


@functools.lru_cache(maxsize=65536)
def log_fixed_point_tail(k: int, f: int, strict: bool = False) -> float:
    """log P(F >= f) (or P(F > f) when ``strict``) for a uniform random permutation of k items."""
    start = f + 1 if strict else f
    terms = [log_fixed_point_pmf(k, j) for j in range(max(start, 0), k + 1)]
    terms = [t for t in terms if t > -math.inf]
    if not terms:
        return -math.inf
    peak = max(terms)
    return peak + math.log(sum(math.exp(t - peak) for t in terms))


def randomised_log_p(k: int, fixed_points: int, u: float) -> float:
    """log of the randomised exact p-value ``P(F > f) + u P(F = f)``: exactly uniform under the null."""
    above = log_fixed_point_tail(k, fixed_points, strict=True)
    at = log_fixed_point_pmf(k, fixed_points) + math.log(max(u, 1e-300))
    return float(np.logaddexp(above, at))


def pair_uniform(*keys: str) -> float:
    """A reproducible U(0,1) for randomised p-values, derived from the compared content."""
    digest = hashlib.sha256("\x00".join(keys).encode()).digest()
    return (int.from_bytes(digest[:8], "little") + 0.5) / 2.0**64


def fisher_log_p(log_ps: list[float]) -> float:
    """log p of Fisher's combination; exact closed form of the chi-square tail for even df."""
    if not log_ps:
        return 0.0
    statistic_half = -sum(log_ps)  # X/2 where X = -2 sum log p ~ chi2(2L)
    if statistic_half <= 0:
        return 0.0
    terms = [i * math.log(statistic_half) - math.lgamma(i + 1) for i in range(len(log_ps))]
    peak = max(terms)
    return min(0.0, -statistic_half + peak + math.log(sum(math.exp(t - peak) for t in terms)))


#: ``exp(t - peak)`` is exactly 0.0 below about -745.2 (the smallest subnormal double): past this
#: distance below the peak a term adds exactly nothing to the tail's sum.
_UNDERFLOW = 800.0


def binomial_half_log_p(n: int, successes: int, u: float) -> float:
    """log of the randomised p-value ``P(X > s) + u P(X = s)`` for X ~ Binomial(n, 1/2): exactly uniform
    when the n signs are independent fair coins (the unit-sign test's null).

    Only the terms that can count are computed (a Kimi K2 comparison pools ~70 000 signs): those from
    ``s`` up, and of the decreasing tail past the mode none after the first that lies
    :data:`_UNDERFLOW` below the peak (every later one is smaller still, so neither the peak nor the
    sum, to the last bit, changes)."""
    if n == 0:
        return 0.0  # no evidence at all: p = 1
    log_half = n * math.log(0.5)
    log_n_factorial = math.lgamma(n + 1)

    def log_pmf(j: int) -> float:
        return log_n_factorial - math.lgamma(j + 1) - math.lgamma(n - j + 1) + log_half

    at = log_pmf(successes) + math.log(max(u, 1e-300))
    above: list[float] = []
    peak = -math.inf
    for j in range(successes + 1, n + 1):
        term = log_pmf(j)
        if 2 * j > n + 2 and term < peak - _UNDERFLOW:  # past the mode: decreasing from here on
            break
        above.append(term)
        peak = max(peak, term)
    if not above:
        return at
    return float(np.logaddexp(peak + math.log(sum(math.exp(t - peak) for t in above)), at))
