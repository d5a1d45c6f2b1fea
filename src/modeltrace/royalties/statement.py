"""Royalty statements: each owner's fees for a period, from revenue reports and declared shares.

An owner registers a :class:`FeeSchedule` for a base model it owns: a rate on the revenue that the
declared ancestries attribute to that model, above a per-derivative threshold for the period.
Publishers report each derivative's revenue for a period (:class:`RevenueReport`). The statement
lists, per derivative, the attributed share (exact fraction), the attributed revenue and the fee,
each rounded half-up to the cent once; the total is the sum of the rounded fees, so the lines add
up to the total to the cent by construction.

Two kinds of line carry no money: *missing split* (the derivative reaches the owner's model through
a label that declares no usable compute split: reported, not guessed) and *claim to review* (the
lineage engine detected the owner's model as a base that no label declares: evidence for a
conversation, not a debt).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from modeltrace.errors import RoyaltyError
from modeltrace.royalties.ancestry import Edge, Label, attribute, fraction_text

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def parse_period(text: str) -> str:
    """``YYYY-MM``, e.g. ``2026-11``."""
    if not isinstance(text, str) or not _PERIOD.match(text):
        raise RoyaltyError(f"period {text!r} is not YYYY-MM (e.g. 2026-11)")
    return text


def parse_money(value: str | Decimal | int, what: str) -> Decimal:
    """A finite, non-negative decimal amount; floats are refused (they are not exact)."""
    if isinstance(value, (bool, float)):
        raise RoyaltyError(f"{what} must be given as a decimal string, not a float ({value!r})")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise RoyaltyError(f"{what} {value!r} is not a decimal number") from None
    if not amount.is_finite() or amount < 0:
        raise RoyaltyError(f"{what} must be a finite amount >= 0, got {value!r}")
    return amount


def parse_rate(value: str | Decimal | int) -> Decimal:
    """A rate in [0, 1]; ``5%`` is accepted as 0.05."""
    text = str(value).strip()
    percent = text.endswith("%")
    rate = parse_money(text.rstrip("%"), "rate")
    rate = rate / 100 if percent else rate
    if rate > 1:
        raise RoyaltyError(f"rate {value!r} is over 100 %")
    return rate


def _currency(code: str) -> str:
    if not isinstance(code, str) or not _CURRENCY.match(code):
        raise RoyaltyError(f"currency {code!r} is not an ISO 4217 code such as USD")
    return code


def to_cents(amount: Fraction) -> Decimal:
    """Round a non-negative exact amount half-up to the cent, with integer arithmetic only."""
    cents, remainder = divmod(amount.numerator * 100, amount.denominator)
    if 2 * remainder >= amount.denominator:
        cents += 1
    return Decimal(cents).scaleb(-2)


@dataclass(frozen=True)
class FeeSchedule:
    """``owner`` asks ``rate`` of the revenue attributed to ``model`` above ``threshold``.

    The threshold applies per derivative and period: a small derivative pays nothing.
    """

    owner: str
    model: str
    rate: Decimal
    threshold: Decimal = Decimal(0)
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not self.owner or not self.model:
            raise RoyaltyError("a fee schedule needs an owner and a model")
        object.__setattr__(self, "rate", parse_rate(self.rate))
        object.__setattr__(self, "threshold", parse_money(self.threshold, "threshold"))
        object.__setattr__(self, "currency", _currency(self.currency))

    def fee(self, attributed: Fraction) -> Fraction:
        return Fraction(self.rate) * max(Fraction(0), attributed - Fraction(self.threshold))

    def as_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "model": self.model,
            "rate": str(self.rate),
            "threshold": str(self.threshold),
            "currency": self.currency,
        }


@dataclass(frozen=True)
class RevenueReport:
    """The revenue a publisher reports for ``derivative`` in ``period``."""

    derivative: str
    period: str
    amount: Decimal
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not self.derivative:
            raise RoyaltyError("a revenue report needs the derivative's name")
        object.__setattr__(self, "period", parse_period(self.period))
        object.__setattr__(self, "amount", parse_money(self.amount, "revenue"))
        object.__setattr__(self, "currency", _currency(self.currency))


@dataclass(frozen=True)
class DetectedEdge:
    """The lineage engine's finding that ``suspect`` was derived from ``base`` (registry evidence)."""

    suspect: str
    base: str
    p_value: float
    test: str = ""


@dataclass(frozen=True)
class StatementLine:
    derivative: str
    model: str
    #: "owed", "below-threshold", "missing-split" or "claim-to-review".
    status: str
    share: Fraction | None
    revenue: Decimal
    attributed: Decimal | None
    fee: Decimal
    trace: tuple[Edge, ...] = ()
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "derivative": self.derivative,
            "model": self.model,
            "status": self.status,
            "share": fraction_text(self.share) if self.share is not None else None,
            "revenue": str(self.revenue),
            "attributed_revenue": str(self.attributed) if self.attributed is not None else None,
            "fee": str(self.fee),
            "trace": [edge.as_dict() for edge in self.trace],
            "note": self.note,
        }


@dataclass
class Statement:
    owner: str
    period: str
    currency: str
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.fee for line in self.lines), Decimal("0.00"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "period": self.period,
            "currency": self.currency,
            "total": str(self.total),
            "lines": [line.as_dict() for line in self.lines],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        columns = ["derivative", "model", "status", "share", "revenue", "attributed_revenue", "fee", "note"]
        writer.writerow(columns)
        for line in self.lines:
            row = line.as_dict()
            writer.writerow(["" if row[column] is None else row[column] for column in columns])
        writer.writerow(["TOTAL", "", "", "", "", "", str(self.total), self.currency])
        return out.getvalue()


def build_statement(
    owner: str,
    period: str,
    schedules: Iterable[FeeSchedule],
    reports: Iterable[RevenueReport],
    labels: Mapping[str, Label],
    detected: Iterable[DetectedEdge] = (),
) -> Statement:
    """``owner``'s statement for ``period``: one line per (derivative, owned model) that is owed,
    missing a split, or detected but undeclared."""
    period = parse_period(period)
    owned = {schedule.model: schedule for schedule in schedules if schedule.owner == owner}
    if not owned:
        raise RoyaltyError(f"{owner!r} has no fee schedule registered")
    currencies = {schedule.currency for schedule in owned.values()}
    if len(currencies) > 1:
        raise RoyaltyError(f"{owner!r} has schedules in several currencies: {', '.join(sorted(currencies))}")
    statement = Statement(owner, period, currencies.pop())
    findings = list(detected)
    for report in sorted((r for r in reports if r.period == period), key=lambda r: r.derivative):
        if report.currency != statement.currency:
            raise RoyaltyError(
                f"revenue of {report.derivative} is in {report.currency}, "
                f"{owner}'s schedule in {statement.currency}"
            )
        statement.lines.extend(_lines_for(report, owned, labels, findings))
    return statement


def _lines_for(
    report: RevenueReport,
    owned: Mapping[str, FeeSchedule],
    labels: Mapping[str, Label],
    detected: list[DetectedEdge],
) -> list[StatementLine]:
    shares = attribute(report.derivative, labels)
    revenue = Fraction(report.amount)
    lines: list[StatementLine] = []
    # One line per owned ancestor, its shares summed over every path (a diamond ancestry reaches
    # the same base twice) so that the threshold applies once per derivative and model.
    for model in sorted({a.ancestor for a in shares.attributions} & owned.keys() - {report.derivative}):
        paths = [a for a in shares.attributions if a.ancestor == model]
        share = sum((a.share for a in paths), Fraction(0))
        attributed = revenue * share
        fee = owned[model].fee(attributed)
        lines.append(
            StatementLine(
                report.derivative, model, "owed" if fee > 0 else "below-threshold", share,
                report.amount, to_cents(attributed), to_cents(fee),
                tuple(edge for a in paths for edge in a.path),
            )
        )  # fmt: skip
    declared = {a.ancestor for a in shares.attributions}
    for gap in shares.unresolved:
        declared |= {gap.model, *gap.declared_bases}
        for model in sorted(({gap.model, *gap.declared_bases} & owned.keys()) - {report.derivative}):
            lines.append(
                StatementLine(
                    report.derivative, model, "missing-split", None, report.amount, None, Decimal("0.00"),
                    gap.path,
                    f"{gap.reason} (label of {gap.model}; up to {fraction_text(gap.share)} unattributed)",
                )
            )  # fmt: skip
    for finding in detected:
        if finding.suspect == report.derivative and finding.base in owned and finding.base not in declared:
            lines.append(
                StatementLine(
                    report.derivative, finding.base, "claim-to-review", None, report.amount, None,
                    Decimal("0.00"), (),
                    _claim_note(finding),
                )
            )  # fmt: skip
    return lines


def _claim_note(finding: DetectedEdge) -> str:
    test = f", {finding.test}" if finding.test else ""
    return f"detected as a base (p = {finding.p_value:.2g}{test}) but declared by no label"
