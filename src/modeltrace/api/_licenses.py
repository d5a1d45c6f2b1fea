"""The facade for licence compliance over a model's ancestry.

The card or label is read by the readers that own it (:mod:`._license_sources`), the lineage file by
``licenses.sources``; the engine gets one :class:`~modeltrace.licenses.LineageNode` tree of values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from modeltrace.errors import LicenseError
from modeltrace.licenses import ComplianceReport, DeploymentProfile, License, check_compliance, load_catalog


def check_license(
    model: str | Path | None = None,
    *,
    lineage: str | Path | None = None,
    tree: Mapping[str, Any] | None = None,
    use: str = "commercial",
    distribution: str = "hosted",
    mau: int | float | str = 0,
    monthly_revenue: float | str = 0,
    name: str | None = None,
    region: str | None = None,
    release_date: str | date | None = None,
    granted: Iterable[str] = (),
    purposes: Iterable[str] = (),
) -> ComplianceReport:
    """What every licence in a model's ancestry demands of this deployment.

    ``model`` is a model folder (with ``modeltrace-label.json`` or a ``README.md`` model card), a
    card or a label file; ``lineage`` a YAML/JSON lineage tree. With both, the lineage file supplies
    the licences and ancestors the card or label lacks. Raises LicenseError on unreadable input or
    option values; an unknown licence id is reported in ``report.unknown``, not raised.
    ``granted`` lists licences whose licensor granted you the licence they make you request above
    a threshold; the lineage file's ``grants:`` adds to it. ``purposes`` are categories of
    :data:`~modeltrace.licenses.profile.PURPOSES` the model is used for: each ancestor's clause that
    forbids one is a violation.
    """
    from modeltrace.api._license_sources import lineage_for_model
    from modeltrace.licenses import lineage_from_data, sources

    if lineage is not None and tree is not None:
        raise LicenseError("Give the lineage as a file or as a tree, not both.")
    model_tree = lineage_for_model(model) if model is not None else None
    declared = None
    if lineage is not None:
        declared = sources.load_lineage_file(lineage)
    elif tree is not None:
        declared = lineage_from_data(tree, source="lineage tree")
    if declared is not None:
        ancestry = sources.merge_lineage(model_tree, declared) if model_tree is not None else declared
    elif model_tree is not None:
        ancestry = model_tree
    else:
        raise LicenseError("Nothing to check: give a model folder, a label or card, or --lineage FILE.")
    if isinstance(release_date, str):
        try:
            release_date = date.fromisoformat(release_date)
        except ValueError as error:
            raise LicenseError(
                f"Release date {release_date!r} is not an ISO date such as 2025-06-30."
            ) from error
    profile = DeploymentProfile(
        use=use,
        distribution=distribution,
        mau=_user_count(mau),
        monthly_revenue_usd=_amount(monthly_revenue, "Monthly revenue"),
        name=name,
        region=region,
        release_date=release_date,
        grants=tuple(dict.fromkeys((*granted, *ancestry.grants))),
        purposes=tuple(dict.fromkeys(purpose.strip().lower() for purpose in purposes)),
    )
    return check_compliance(ancestry, profile, load_catalog())


def _amount(value: float | str, what: str) -> float:
    """A finite number from ``value`` (``"2e6"``, ``2000000``); LicenseError (exit 3) otherwise."""
    try:
        number = (
            float(str(value).replace("_", "").replace(",", "")) if isinstance(value, str) else float(value)
        )
    except ValueError:
        raise LicenseError(f"{what} {value!r} is not a number such as 2000000 or 2e6.") from None
    if not math.isfinite(number):
        raise LicenseError(f"{what} must be a finite number, got {value!r}.")
    if number < 0:
        raise LicenseError(f"{what} must be 0 or more, got {value!r}.")
    return number


def _user_count(value: int | float | str) -> int:
    """A whole number of users from ``value`` (``150000000``, ``"1.5e8"``, ``"150_000_000"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number: float | int = value
    else:
        number = _amount(value, "Monthly active users")
    if number != int(number):
        raise LicenseError(f"Monthly active users must be a whole number, got {value!r}.")
    return int(number)


def show_license(license_id: str) -> License:
    """One licence of the knowledge base by any accepted id (``llama3.1``, ``Apache-2.0`` ...)."""
    catalog = load_catalog()
    found = catalog.get(license_id)
    if found is None:
        hint = catalog.hint(license_id)
        if hint:
            raise LicenseError(hint)
        known = ", ".join(license_.key for license_ in catalog)
        raise LicenseError(f"No licence '{license_id}' in the knowledge base; known: {known}.")
    return found


def list_licenses() -> list[License]:
    """Every licence in the knowledge base, sorted by id."""
    return list(load_catalog())
