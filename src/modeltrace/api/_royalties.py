"""The facade for the pooled licensing repository: royalty terms, revenue reports, statements.

Terms and reports live in the registry database (see docs/royalties.md); a statement is computed on
demand by :func:`modeltrace.royalties.build_statement` from the labels and detected edges the
registry holds, so it always reflects the labels as they stand.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltrace.api._registry import _registry
from modeltrace.errors import LabelError, RegistryNotFoundError

if TYPE_CHECKING:
    from modeltrace.registry import Registry
    from modeltrace.royalties import Statement


def royalties_terms_add(
    owner: str,
    model: str,
    rate: str,
    threshold: str = "0",
    currency: str = "USD",
    *,
    db: str | None = None,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """Register ``owner``'s fee schedule for ``model`` (``rate`` such as ``0.05`` or ``5%``, a
    ``threshold`` per derivative and period); registering again replaces the terms.

    Returns ``{"terms": {...}, "replaced": bool}``. RoyaltyError (exit 3) for invalid figures.
    """
    from modeltrace.registry.tokens import check_namespace
    from modeltrace.royalties import FeeSchedule

    check_namespace(owner)
    schedule = FeeSchedule(owner, model.strip(), rate, threshold, currency)
    store, owned = _registry(registry, db)
    try:
        terms, replaced = store.royalties.set_terms(
            schedule.owner, schedule.model, str(schedule.rate), str(schedule.threshold), schedule.currency
        )
        return {"terms": terms, "replaced": replaced}
    finally:
        if owned:
            store.close()


def royalties_report(
    derivative: str,
    period: str,
    amount: str,
    currency: str = "USD",
    *,
    db: str | None = None,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """Report the revenue of a registered derivative (id, NAME or NAMESPACE/NAME) for ``period``.

    ``amount`` is a decimal string (floats are refused: they are not exact). Reporting the same
    derivative and period again replaces the figure; every report stays in the audit trail.
    Returns ``{"report": {...}, "replaced": {...} | None, "history": [...]}``.
    """
    from modeltrace.royalties import RevenueReport

    store, owned = _registry(registry, db)
    try:
        model = store.get(derivative)
        report = RevenueReport(model["name"], period, amount, currency)
        stored, previous = store.royalties.report(
            report.derivative, report.period, str(report.amount), report.currency, model["namespace"]
        )
        history = store.royalties.history(report.derivative, report.period)
        return {"report": stored, "replaced": previous, "history": history}
    finally:
        if owned:
            store.close()


def royalties_statement(
    owner: str, period: str, *, db: str | None = None, registry: Registry | None = None
) -> Statement:
    """``owner``'s statement for ``period`` (YYYY-MM) from the registered terms, revenue reports,
    labels and detected edges. RegistryNotFoundError when ``owner`` has registered no terms."""
    from modeltrace.royalties import DetectedEdge, FeeSchedule, RevenueReport, build_statement, parse_period

    parse_period(period)
    store, owned = _registry(registry, db)
    try:
        terms = store.royalties.terms(owner)
        if not terms:
            raise RegistryNotFoundError(
                f"No royalty terms for owner '{owner}'; see `modeltrace royalties terms add`."
            )
        schedules = [
            FeeSchedule(t["owner"], t["model"], t["rate"], t["threshold"], t["currency"]) for t in terms
        ]
        reports = [RevenueReport(r["derivative"], r["period"], r["amount"], r["currency"])
                   for r in store.royalties.reports(period)]  # fmt: skip
        labels = {}
        for name, entry in store.royalties.labels_by_model().items():
            label = _readable_label(entry["body"])
            if label is not None:
                labels[name] = label
        detected = [DetectedEdge(e["suspect"], e["base"], e["p_value"] if e["p_value"] is not None else 1.0,
                                 e["test"] or "") for e in store.royalties.related_edges()]  # fmt: skip
        return build_statement(owner, period, schedules, reports, labels, detected)
    finally:
        if owned:
            store.close()


def royalties_model_ids(
    names: set[str], *, db: str | None = None, registry: Registry | None = None
) -> dict[str, int]:
    """Registry ids of the named models (for links from a statement to model pages)."""
    store, owned = _registry(registry, db)
    try:
        return store.royalties.model_ids(names)
    finally:
        if owned:
            store.close()


def _readable_label(body: Any) -> dict[str, Any] | None:
    """The label inside a stored body: as is, or unwrapped from a signed envelope or bundle."""
    from modeltrace.label.schema import read_label

    if isinstance(body, dict) and isinstance(body.get("model"), dict):
        return body
    with tempfile.TemporaryDirectory(prefix="modeltrace-roy-") as folder:
        path = Path(folder) / "label.json"
        path.write_text(json.dumps(body), encoding="utf-8")
        try:
            return dict(read_label(path))
        except LabelError:
            return None  # an unreadable stored label declares nothing: its model has no split
