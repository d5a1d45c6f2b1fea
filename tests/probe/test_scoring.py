"""Exact-match scoring, margin, open-set 'unknown' and the gateway flag (pure, no network)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeltrace.probe.probeset import ProbeSet
from modeltrace.probe.scoring import MATCH_THRESHOLD, UNKNOWN, UnitObservation, gateway_flag, score

REPEATS = (1, 4)


def _observe(probe_set: ProbeSet, per_unit: list[float | None]) -> list[UnitObservation]:
    observations = []
    for unit, value in zip(probe_set.units, per_unit, strict=True):
        counts = (None, None) if value is None else (30 + int(value), 30 + int(value * 4))
        if value is not None and value != int(value):
            counts = (30, 30 + round(value * 3))  # a non-integer slope: not linear
        observations.append(UnitObservation(unit.text, unit.category, unit.expected, counts, REPEATS))
    return observations


def test_each_reference_is_named_when_counts_are_its_own(builtin_set: ProbeSet) -> None:
    for name in builtin_set.references:
        verdict = score(
            _observe(builtin_set, [u.expected[name] for u in builtin_set.units]), builtin_set.references
        )
        assert verdict.verdict == name
        assert verdict.candidates[0].matches == len(builtin_set.units)
        assert verdict.margin >= builtin_set.min_pair_distance


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # read-only fixture
@given(data=st.data())
def test_wrong_units_lower_the_score_and_too_many_make_it_unknown(
    builtin_set: ProbeSet, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(builtin_set.references))
    wrong = data.draw(st.sets(st.integers(0, len(builtin_set.units) - 1)))
    values = [u.expected[name] + (100 if i in wrong else 0) for i, u in enumerate(builtin_set.units)]
    verdict = score(_observe(builtin_set, values), builtin_set.references)
    fraction = 1 - len(wrong) / len(builtin_set.units)
    if fraction >= MATCH_THRESHOLD:
        assert verdict.verdict == name
    else:
        assert verdict.verdict == UNKNOWN


def test_unmeasured_units_are_not_counted_and_too_few_means_unknown(builtin_set: ProbeSet) -> None:
    name = builtin_set.references[0]
    values: list[float | None] = [u.expected[name] for u in builtin_set.units]
    for i in range(len(values) - 7):
        values[i] = None
    verdict = score(_observe(builtin_set, values), builtin_set.references)
    assert verdict.verdict == UNKNOWN and verdict.measured_units == 7 and "only 7 units" in verdict.reason


def test_fractional_slopes_match_nothing(builtin_set: ProbeSet) -> None:
    verdict = score(_observe(builtin_set, [2.5] * len(builtin_set.units)), builtin_set.references)
    assert verdict.verdict == UNKNOWN
    assert all(candidate.matches == 0 for candidate in verdict.candidates)


def test_a_tie_is_reported_not_broken(builtin_set: ProbeSet) -> None:
    # Duplicate a reference under a second name: identical expectations can only tie.
    units = [
        UnitObservation(
            u.text, u.category, {**u.expected, "twin": u.expected["qwen3"]}, (10, 10 + 3 * v), REPEATS
        )
        for u in builtin_set.units
        for v in [u.expected["qwen3"]]
    ]
    verdict = score(units, (*builtin_set.references, "twin"))
    assert verdict.verdict == UNKNOWN and verdict.margin == 0 and set(verdict.tied) == {"qwen3", "twin"}


def test_length_estimates_raise_the_gateway_flag(builtin_set: ProbeSet) -> None:
    estimates = [len(u.text) / 4 for u in builtin_set.units]
    observations = [
        UnitObservation(u.text, u.category, u.expected, (50, 50 + round(3 * e)), REPEATS)
        for u, e in zip(builtin_set.units, estimates, strict=True)
    ]
    verdict = score(observations, builtin_set.references)
    flag = gateway_flag(observations, verdict, [])
    assert verdict.verdict == UNKNOWN and flag["suspected"] and "proportional" in flag["reasons"][0]


def test_cl100k_counts_with_a_qwen_hint_raise_the_gateway_flag(builtin_set: ProbeSet) -> None:
    observations = _observe(builtin_set, [u.expected["cl100k"] for u in builtin_set.units])
    verdict = score(observations, builtin_set.references)
    assert gateway_flag(observations, verdict, ["qwen3-235b-a22b"])["suspected"]
    assert not gateway_flag(observations, verdict, ["gpt-4o"])["suspected"]
