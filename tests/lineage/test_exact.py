"""Known answers and null behaviour of the exact statistics."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from modeltrace.lineage.exact import (
    fisher_log_p,
    log_fixed_point_pmf,
    log_fixed_point_tail,
    randomised_log_p,
)


def test_fixed_point_distribution_of_three_items() -> None:
    # Permutations of 3: 2 derangements, 3 with one fixed point, 0 with two, 1 identity.
    assert math.isclose(math.exp(log_fixed_point_pmf(3, 0)), 2 / 6)
    assert math.isclose(math.exp(log_fixed_point_pmf(3, 1)), 3 / 6)
    assert math.exp(log_fixed_point_pmf(3, 2)) == 0.0
    assert math.isclose(math.exp(log_fixed_point_pmf(3, 3)), 1 / 6)
    assert math.isclose(math.exp(log_fixed_point_tail(3, 1)), 4 / 6)


def test_tail_of_identity_is_one_over_k_factorial_even_when_tiny() -> None:
    assert math.isclose(log_fixed_point_tail(128, 128), -math.lgamma(129), rel_tol=1e-12)
    assert log_fixed_point_tail(128, 0) == 0.0 or abs(log_fixed_point_tail(128, 0)) < 1e-12


def test_randomised_p_is_uniform_under_random_permutations() -> None:
    rng = np.random.default_rng(0)
    k = 20
    ps = []
    for _ in range(3000):
        fixed = int(np.sum(rng.permutation(k) == np.arange(k)))
        ps.append(math.exp(randomised_log_p(k, fixed, rng.random())))
    assert stats.kstest(ps, "uniform").pvalue > 0.001


def test_fisher_matches_scipy_and_handles_underflow() -> None:
    log_ps = [math.log(0.2), math.log(0.03), math.log(0.5)]
    expected = stats.chi2.sf(-2 * sum(log_ps), 2 * len(log_ps))
    assert math.isclose(math.exp(fisher_log_p(log_ps)), expected, rel_tol=1e-9)
    huge = fisher_log_p([-500.0] * 6)
    assert -3000 < huge < -2900  # finite, not -inf, where scipy's sf would underflow to 0
