"""Storage of royalty terms and revenue reports, and the registry facts a statement rests on.

Amounts travel as decimal text both ways: the arithmetic (exact fractions, cents) belongs to
:mod:`modeltrace.royalties`; this module only keeps what owners and publishers registered.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, sessionmaker

from modeltrace.errors import RegistryConflictError
from modeltrace.registry.schema import (
    DetectedEdgeRow,
    FeeScheduleRow,
    LabelRow,
    ModelRow,
    RevenueReportHistoryRow,
    RevenueReportRow,
    utc_now,
)

#: Detected verdicts that count as "derived from" for a claim to review.
RELATED_VERDICTS = ("related", "same-weights")


def _terms_dict(row: FeeScheduleRow) -> dict[str, Any]:
    return {"owner": row.owner, "model": row.model, "rate": row.rate, "threshold": row.threshold,
            "currency": row.currency}  # fmt: skip


def _report_dict(row: RevenueReportRow | RevenueReportHistoryRow) -> dict[str, Any]:
    return {
        "derivative": row.derivative,
        "period": row.period,
        "amount": row.amount,
        "currency": row.currency,
        "publisher": row.publisher,
        "reported_at": row.created_at.isoformat() if row.created_at else None,
    }


class RoyaltyStore:
    def __init__(self, sessions: sessionmaker[Any]) -> None:
        self._sessions = sessions

    def set_terms(
        self, owner: str, model: str, rate: str, threshold: str, currency: str
    ) -> tuple[dict[str, Any], bool]:
        """Register (or replace) ``owner``'s terms for ``model``; returns (terms, replaced)."""
        for _attempt in range(2):
            try:
                with self._sessions.begin() as session:
                    row = session.scalars(
                        select(FeeScheduleRow).where(
                            FeeScheduleRow.owner == owner, FeeScheduleRow.model == model
                        )
                    ).first()
                    replaced = row is not None
                    if row is None:
                        row = FeeScheduleRow(owner=owner, model=model)
                        session.add(row)
                    row.rate, row.threshold, row.currency = rate, threshold, currency
                    session.flush()
                    return _terms_dict(row), replaced
            except IntegrityError:
                continue  # a concurrent first registration won: the second pass replaces it
        raise RegistryConflictError(f"Terms of {owner} for {model} are being written concurrently; retry.")

    def terms(self, owner: str | None = None) -> list[dict[str, Any]]:
        statement = select(FeeScheduleRow).order_by(FeeScheduleRow.owner, FeeScheduleRow.model)
        if owner is not None:
            statement = statement.where(FeeScheduleRow.owner == owner)
        with self._sessions() as session:
            return [_terms_dict(row) for row in session.scalars(statement)]

    def report(
        self, derivative: str, period: str, amount: str, currency: str, publisher: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Store the revenue of ``derivative`` for ``period``; returns (report, the one it replaced).

        Every report also goes to the history table, so a replaced figure is never lost.
        """
        for _attempt in range(2):
            try:
                with self._sessions.begin() as session:
                    row = session.scalars(
                        select(RevenueReportRow).where(
                            RevenueReportRow.derivative == derivative, RevenueReportRow.period == period
                        )
                    ).first()
                    previous = None if row is None else _report_dict(row)
                    if row is None:
                        row = RevenueReportRow(derivative=derivative, period=period)
                        session.add(row)
                    row.amount, row.currency, row.publisher = amount, currency, publisher
                    row.created_at = utc_now()
                    session.add(RevenueReportHistoryRow(derivative=derivative, period=period, amount=amount,
                                                        currency=currency, publisher=publisher))  # fmt: skip
                    session.flush()
                    session.refresh(row)
                    return _report_dict(row), previous
            except IntegrityError:
                continue
        raise RegistryConflictError(
            f"Revenue of {derivative} for {period} is being reported concurrently; retry."
        )

    def reports(self, period: str) -> list[dict[str, Any]]:
        with self._sessions() as session:
            rows = session.scalars(
                select(RevenueReportRow)
                .where(RevenueReportRow.period == period)
                .order_by(RevenueReportRow.derivative)
            )
            return [_report_dict(row) for row in rows]

    def history(self, derivative: str, period: str) -> list[dict[str, Any]]:
        """Every report received for ``derivative`` and ``period``, oldest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(RevenueReportHistoryRow)
                .where(
                    RevenueReportHistoryRow.derivative == derivative, RevenueReportHistoryRow.period == period
                )
                .order_by(RevenueReportHistoryRow.id)
            )
            return [_report_dict(row) for row in rows]

    def labels_by_model(self) -> dict[str, dict[str, Any]]:
        """The newest label body of every labelled model, keyed by model name, with the model's id
        and namespace (the statement links each trace edge to the model page holding the label)."""
        with self._sessions() as session:
            rows = session.execute(
                select(ModelRow.id, ModelRow.name, ModelRow.namespace, LabelRow.body)
                .join(LabelRow, LabelRow.model_id == ModelRow.id)
                .order_by(LabelRow.id)
            )
            return {name: {"model_id": model_id, "namespace": namespace, "body": body}
                    for model_id, name, namespace, body in rows}  # fmt: skip

    def related_edges(self) -> list[dict[str, Any]]:
        """Detected edges whose verdict says the suspect derives from the base."""
        suspect, base = aliased(ModelRow), aliased(ModelRow)
        with self._sessions() as session:
            rows = session.execute(
                select(suspect.name, base.name, DetectedEdgeRow.p_value, DetectedEdgeRow.test)
                .join(suspect, suspect.id == DetectedEdgeRow.suspect_id)
                .join(base, base.id == DetectedEdgeRow.base_id)
                .where(DetectedEdgeRow.verdict.in_(RELATED_VERDICTS))
                .order_by(DetectedEdgeRow.id)
            )
            return [{"suspect": s, "base": b, "p_value": p, "test": t} for s, b, p, t in rows]

    def model_ids(self, names: set[str]) -> dict[str, int]:
        """Registered ids of the given model names (the first registered when a name repeats)."""
        if not names:
            return {}
        with self._sessions() as session:
            rows = session.execute(
                select(ModelRow.name, ModelRow.id)
                .where(ModelRow.name.in_(sorted(names)))
                .order_by(ModelRow.id.desc())
            )
            return dict(rows.all())
