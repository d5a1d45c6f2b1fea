"""Known-answer tests of royalty attribution and statements (issue 17)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modeltrace.errors import RoyaltyError
from modeltrace.royalties import (
    DetectedEdge,
    FeeSchedule,
    RevenueReport,
    attribute,
    build_statement,
    to_cents,
)


def label(
    name: str, bases: list[dict[str, Any]] | None = None, **stages: tuple[float, str]
) -> dict[str, Any]:
    """A label as ``label create`` writes it, reduced to what royalties read."""
    return {
        "model": {"name": name, "digests": {"oms_root": "ab" * 32}},
        "base_models": bases or [],
        "training": {
            "compute": [
                {"stage": stage, "kind": kind, "party": None, "flops": flops}
                for stage, (flops, kind) in stages.items()
            ]
        },
    }


def base(model_id: str, relation: str = "finetune", weight: float | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": model_id, "relation": relation}
    if weight is not None:
        entry["weight"] = weight
    return entry


# A <- B <- C: B says A's pre-training is 1/4 of its compute; C says B's part is 1/2 of its own.
CHAIN = {
    "B": label("B", [base("A")], pretraining=(1e24, "pre-training"), sft=(3e24, "post-training")),
    "C": label("C", [base("B")], pretraining=(4e24, "pre-training"), rl=(4e24, "post-training")),
}


def test_two_level_ancestry_multiplies_shares() -> None:
    shares = attribute("C", CHAIN)
    assert shares.share_of("C") == Fraction(1, 2)
    assert shares.share_of("B") == Fraction(3, 8)
    assert shares.share_of("A") == Fraction(1, 8)
    assert shares.total_attributed() == 1
    assert not shares.unresolved
    path_to_a = next(a.path for a in shares.attributions if a.ancestor == "A")
    assert [(edge.model, edge.base) for edge in path_to_a] == [("C", "B"), ("B", "A")]
    assert path_to_a[0].evidence.startswith("label of C")


def test_two_level_statements_per_owner() -> None:
    schedules = [
        FeeSchedule("alpha-labs", "A", Decimal("0.10")),
        FeeSchedule("beta-corp", "B", Decimal("0.05"), threshold=Decimal("100000")),
    ]
    reports = [RevenueReport("C", "2026-11", Decimal("1000000.00"))]
    alpha = build_statement("alpha-labs", "2026-11", schedules, reports, CHAIN)
    assert [(line.model, line.status, line.attributed, line.fee) for line in alpha.lines] == [
        ("A", "owed", Decimal("125000.00"), Decimal("12500.00"))
    ]
    beta = build_statement("beta-corp", "2026-11", schedules, reports, CHAIN)
    # 3/8 of 1 M is 375 000; 5 % of the 275 000 above the threshold.
    assert [(line.model, line.attributed, line.fee) for line in beta.lines] == [
        ("B", Decimal("375000.00"), Decimal("13750.00"))
    ]
    assert beta.total == Decimal("13750.00")
    # Another period has no revenue, so no lines.
    assert build_statement("beta-corp", "2026-10", schedules, reports, CHAIN).lines == []


def test_merge_splits_by_declared_weight() -> None:
    labels = {
        "M": label(
            "M", [base("X", "merge", 0.6), base("Y", "merge", 0.4)],
            pretraining=(3e24, "pre-training"), merge=(1e24, "post-training"),
        )
    }  # fmt: skip
    shares = attribute("M", labels)
    assert shares.share_of("X") == Fraction(9, 20)
    assert shares.share_of("Y") == Fraction(3, 10)
    assert shares.share_of("M") == Fraction(1, 4)


def test_merge_without_weights_is_missing_not_split_evenly() -> None:
    labels = {"M": label("M", [base("X", "merge"), base("Y", "merge")], pretraining=(3e24, "pre-training"))}
    shares = attribute("M", labels)
    assert shares.attributions == []
    assert [(gap.model, gap.share) for gap in shares.unresolved] == [("M", 1)]
    assert "weight" in shares.unresolved[0].reason


def test_declared_distillation_edge() -> None:
    labels = {
        "D": label(
            "D", [base("T", "distilled")], teacher=(1e24, "pre-training"), distil=(1e23, "post-training")
        )
    }
    schedules = [FeeSchedule("teacher-co", "T", Decimal("0.02"))]
    reports = [RevenueReport("D", "2026-11", Decimal("1100.00"))]
    statement = build_statement("teacher-co", "2026-11", schedules, reports, labels)
    assert [(line.share, line.attributed, line.fee) for line in statement.lines] == [
        (Fraction(10, 11), Decimal("1000.00"), Decimal("20.00"))
    ]
    assert statement.lines[0].trace[0].relation == "distilled"


def test_a_label_without_compute_split_is_reported_missing() -> None:
    labels = {"F": label("F", [base("A")])}
    schedules = [FeeSchedule("alpha-labs", "A", Decimal("0.10"))]
    reports = [RevenueReport("F", "2026-11", Decimal("5000"))]
    statement = build_statement("alpha-labs", "2026-11", schedules, reports, labels)
    assert [(line.model, line.status, line.fee, line.attributed) for line in statement.lines] == [
        ("A", "missing-split", Decimal("0.00"), None)
    ]
    assert "no training compute" in statement.lines[0].note
    assert statement.total == 0


def test_detected_but_undeclared_base_is_a_claim_not_money() -> None:
    labels = {"P": label("P", [], rl=(1e24, "post-training"))}
    labels["P"]["from_scratch"] = True
    schedules = [FeeSchedule("kimi-owner", "K", Decimal("0.05"))]
    reports = [RevenueReport("P", "2026-11", Decimal("20000000"))]
    detected = [DetectedEdge("P", "K", 1e-40, "unit-signs"), DetectedEdge("Q", "K", 1e-9)]
    statement = build_statement("kimi-owner", "2026-11", schedules, reports, labels, detected)
    assert [(line.derivative, line.status, line.fee) for line in statement.lines] == [
        ("P", "claim-to-review", Decimal("0.00"))
    ]
    assert "declared by no label" in statement.lines[0].note
    # A declared edge is not also a claim.
    declared = {"P": label("P", [base("K")], base=(1e24, "pre-training"), rl=(3e24, "post-training"))}
    statement = build_statement("kimi-owner", "2026-11", schedules, reports, declared, detected)
    assert [(line.status, line.fee) for line in statement.lines] == [("owed", Decimal("250000.00"))]


def test_diamond_ancestry_sums_into_one_line_with_one_threshold() -> None:
    labels = {
        "B1": label("B1", [base("A")], pt=(1e24, "pre-training"), sft=(1e24, "post-training")),
        "B2": label("B2", [base("A")], pt=(1e24, "pre-training"), sft=(3e24, "post-training")),
        "D": label("D", [base("B1", "merge", 1), base("B2", "merge", 1)], pt=(1e24, "pre-training")),
    }
    shares = attribute("D", labels)
    assert shares.share_of("A") == Fraction(1, 2) * Fraction(1, 2) + Fraction(1, 2) * Fraction(1, 4)
    schedules = [FeeSchedule("alpha-labs", "A", Decimal("0.10"), threshold=Decimal("100"))]
    statement = build_statement(
        "alpha-labs", "2026-11", schedules, [RevenueReport("D", "2026-11", "800")], labels
    )
    assert [(line.share, line.attributed, line.fee) for line in statement.lines] == [
        (Fraction(3, 8), Decimal("300.00"), Decimal("20.00"))
    ]
    assert len(statement.lines[0].trace) == 4


def test_rounding_is_half_up_per_line_and_lines_add_to_the_total() -> None:
    labels = {
        "T": label("T", [base("A")], pt=(1.0, "pre-training"), rest=(2.0, "post-training")),
        "U": label("U", [base("A")], pt=(2.0, "pre-training"), rest=(1.0, "post-training")),
    }
    schedules = [FeeSchedule("alpha-labs", "A", "100%")]
    reports = [RevenueReport("T", "2026-11", "100.00"), RevenueReport("U", "2026-11", "100.01")]
    statement = build_statement("alpha-labs", "2026-11", schedules, reports, labels)
    assert [line.fee for line in statement.lines] == [Decimal("33.33"), Decimal("66.67")]
    assert statement.total == Decimal("100.00")
    assert statement.to_csv().splitlines()[-1] == "TOTAL,,,,,,100.00,USD"


@given(
    revenues=st.lists(st.integers(0, 10**12), min_size=1, max_size=8),
    flops=st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 10**6)), min_size=8, max_size=8),
    rate=st.integers(0, 10_000),
)
def test_each_line_is_the_exact_fee_rounded_and_the_total_their_sum(
    revenues: list[int], flops: list[tuple[int, int]], rate: int
) -> None:
    labels = {
        f"d{i}": label(
            f"d{i}", [base("A")], pt=(float(pt), "pre-training"), post=(float(post), "post-training")
        )
        for i, (pt, post) in enumerate(flops)
    }
    rate_decimal = Decimal(rate).scaleb(-4)
    schedules = [FeeSchedule("alpha-labs", "A", rate_decimal)]
    reports = [
        RevenueReport(f"d{i}", "2026-11", Decimal(cents).scaleb(-2)) for i, cents in enumerate(revenues)
    ]
    statement = build_statement("alpha-labs", "2026-11", schedules, reports, labels)
    for line, (cents, (pt, post)) in zip(statement.lines, zip(revenues, flops, strict=False), strict=True):
        exact = Fraction(cents, 100) * Fraction(pt, pt + post) * Fraction(rate_decimal)
        assert abs(Fraction(line.fee) - exact) <= Fraction(1, 200)
    assert statement.total == sum((line.fee for line in statement.lines), Decimal(0))
    assert statement.as_dict()["total"] == str(statement.total)


def test_to_cents_rounds_half_up() -> None:
    assert to_cents(Fraction(1, 200)) == Decimal("0.01")
    assert to_cents(Fraction(1, 201)) == Decimal("0.00")
    assert to_cents(Fraction(12345, 100)) == Decimal("123.45")


def test_a_cycle_is_an_error_naming_it() -> None:
    labels = {
        "A": label("A", [base("B")], pt=(1.0, "pre-training"), x=(1.0, "post-training")),
        "B": label("B", [base("A")], pt=(1.0, "pre-training"), x=(1.0, "post-training")),
    }
    with pytest.raises(RoyaltyError, match="cycle: A -> B -> A"):
        attribute("A", labels)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RevenueReport("D", "2026-13", Decimal(1)), "YYYY-MM"),
        (lambda: RevenueReport("D", "2026-11", 1.5), "not a float"),  # type: ignore[arg-type]
        (lambda: RevenueReport("D", "2026-11", "NaN"), "finite"),
        (lambda: RevenueReport("D", "2026-11", "-1"), "finite"),
        (lambda: RevenueReport("D", "2026-11", "1", currency="dollars"), "ISO 4217"),
        (lambda: FeeSchedule("o", "m", "150%"), "over 100"),
        (lambda: FeeSchedule("o", "m", "0.1", threshold="inf"), "finite"),
    ],
)
def test_bad_inputs_are_refused(make: Any, message: str) -> None:
    with pytest.raises(RoyaltyError, match=message):
        make()


def test_an_owner_without_terms_and_mixed_currencies_are_errors() -> None:
    with pytest.raises(RoyaltyError, match="no fee schedule"):
        build_statement("nobody", "2026-11", [], [], {})
    schedules = [FeeSchedule("alpha-labs", "A", "0.1", currency="EUR")]
    reports = [RevenueReport("C", "2026-11", "10", currency="USD")]
    with pytest.raises(RoyaltyError, match="EUR"):
        build_statement("alpha-labs", "2026-11", schedules, reports, CHAIN)
