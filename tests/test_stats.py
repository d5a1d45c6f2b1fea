"""Holm's correction (modeltrace.stats): exact known answers on both scales."""

from __future__ import annotations

import math

import pytest

from modeltrace.stats import holm


def test_holm_known_answer_is_exact() -> None:
    # Powers of two, so every product is exact. Sorted .0625, .125, .25, .5 with m = 4:
    # 4 x .0625 = .25, 3 x .125 = .375, 2 x .25 = .5, 1 x .5 = .5 (monotone), back in input order.
    assert holm([0.25, 0.125, 0.5, 0.0625]) == [0.5, 0.375, 0.5, 0.25]


def test_holm_textbook_example_is_monotone_and_capped() -> None:
    # Sorted .005, .01, .03, .04: 4 x .005 = .02, 3 x .01 = .03, 2 x .03 = .06, 1 x .04 = .04 -> .06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-15)
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([0.5, 0.5, 0.5]) == [1.0, 1.0, 1.0]
    assert holm([]) == []


def test_holm_on_log_p_values_agrees_and_leaves_missing_tests_out() -> None:
    p = [0.25, 0.125, 0.5, 0.0625]
    logged = holm([math.log(v) for v in p], log=True)
    assert [math.exp(v) for v in logged if v is not None] == pytest.approx(holm(p), rel=1e-15)
    # None: a comparison without a p-value is no member of the family (m = 2 here, not 3).
    assert holm([None, math.log(0.25), math.log(0.5)], log=True) == [None, math.log(0.5), math.log(0.5)]
    # Far below float range on the linear scale: 10^-50000 x 2 stays exact in logs.
    tiny = -50000 * math.log(10)
    assert holm([tiny, 0.0], log=True) == [tiny + math.log(2), 0.0]
