"""The public Python API of modeltrace: one facade over every layer.

The CLI and the service call only this module (and :mod:`modeltrace.errors`). Each section below
belongs to one layer; functions here validate inputs, open files through ``formats`` and hand
values in memory to the pure layers (fingerprint, lineage, licences).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import modeltrace
from modeltrace import demo_zoo
from modeltrace.errors import LicenseError, UnsupportedFormatError
from modeltrace.fingerprint.architecture import card_from_config, card_from_tensors
from modeltrace.formats import open_model
from modeltrace.licenses import ComplianceReport, DeploymentProfile, License, check_compliance, load_catalog
from modeltrace.paths import modeltrace_home


def version() -> str:
    """The installed modeltrace version."""
    return modeltrace.__version__


# --- licenses ------------------------------------------------------------------------------------


def check_license(
    model: str | Path | None = None,
    *,
    lineage: str | Path | None = None,
    use: str = "commercial",
    distribution: str = "hosted",
    mau: int = 0,
    monthly_revenue: float = 0,
    name: str | None = None,
    region: str | None = None,
    release_date: str | date | None = None,
) -> ComplianceReport:
    """What every licence in a model's ancestry demands of this deployment.

    ``model`` is a model folder (with ``modeltrace-label.json`` or a ``README.md`` model card), a
    card or a label file; ``lineage`` a YAML/JSON lineage tree. With both, the lineage file supplies
    the licences and ancestors the card or label lacks. Raises LicenseError on unreadable input or
    option values; an unknown licence id is reported in ``report.unknown``, not raised.
    """
    from modeltrace.licenses import sources

    model_tree = sources.lineage_for_model(model) if model is not None else None
    if lineage is not None:
        from_file = sources.load_lineage_file(lineage)
        tree = sources.merge_lineage(model_tree, from_file) if model_tree is not None else from_file
    elif model_tree is not None:
        tree = model_tree
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
        mau=mau,
        monthly_revenue_usd=monthly_revenue,
        name=name,
        region=region,
        release_date=release_date,
    )
    return check_compliance(tree, profile, load_catalog())


def show_license(license_id: str) -> License:
    """One licence of the knowledge base by any accepted id (``llama3.1``, ``Apache-2.0`` ...)."""
    found = load_catalog().get(license_id)
    if found is None:
        known = ", ".join(license_.key for license_ in load_catalog())
        raise LicenseError(f"No licence '{license_id}' in the knowledge base; known: {known}.")
    return found


def list_licenses() -> list[License]:
    """Every licence in the knowledge base, sorted by id."""
    return list(load_catalog())


# --- inspect -----------------------------------------------------------------------------------------


def inspect(path: str | Path, format: str | None = None) -> dict[str, Any]:
    """The architecture card of a model folder, weight file or bare config.json, as a JSON-ready dict.

    Parameters are counted from the tensors when weights are present (config.json's count is added
    as ``config_total_params``) and from config.json alone otherwise. Keys other tools rely on:
    ``format``, ``total_params``, ``active_params``, ``activation_rate``, ``layers``,
    ``hidden_size``, ``vocab_size``, ``experts``, ``declared``; see docs/inspect.md for the rest.
    """
    with open_model(path, format) as source:
        if source.weights is not None:
            card = card_from_tensors(
                source.weights.stored_tensors().values(), source.config, source.weights.metadata
            )
        elif source.config is not None:
            card = card_from_config(source.config)
        else:  # open_model only returns sources with weights or a config; keep the promise explicit
            raise UnsupportedFormatError(source.path, "no weights and no config.json to describe")
        return {
            "path": str(source.path),
            "name": source.name,
            "format": source.format,
            **card.as_dict(),
            "declared": source.declared.as_dict(),
            "tokenizer_files": sorted(source.tokenizer_files),
        }


def build_demo_zoo(home: Path | None = None) -> Path:
    """Generate the demo models under ``<home>/demo-zoo`` (home defaults to MODELTRACE_HOME)."""
    return demo_zoo.build((home if home is not None else modeltrace_home()) / "demo-zoo")


def demo_zoo_members(zoo: Path) -> list[Path]:
    """The model paths of a built demo zoo, in name order."""
    return demo_zoo.members(zoo)
