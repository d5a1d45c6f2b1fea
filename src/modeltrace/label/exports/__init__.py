"""Label exports to standard formats: SPDX 3.0.1 (AI profile), CycloneDX 1.6 ML-BOM, HF card, MOF."""

from __future__ import annotations

import json

from modeltrace.errors import UsageError
from modeltrace.label.exports.cyclonedx import to_cyclonedx
from modeltrace.label.exports.hf_card import to_hf_card
from modeltrace.label.exports.spdx import to_spdx
from modeltrace.label.levels import compute_shares, traceability
from modeltrace.label.mof import mof_class
from modeltrace.label.schema import Label, validate_label
from modeltrace.label.vocabulary import EXPORT_FORMATS


def export_label(label: Label, format: str) -> str:
    """The label rendered in ``format`` as text (JSON for spdx/cyclonedx/mof, YAML for hf-card)."""
    validate_label(label)
    if format == "spdx":
        return json.dumps(to_spdx(label), indent=2, ensure_ascii=False) + "\n"
    if format == "cyclonedx":
        return json.dumps(to_cyclonedx(label), indent=2, ensure_ascii=False) + "\n"
    if format == "hf-card":
        return to_hf_card(label)
    if format == "mof":
        summary = {
            "model": label["model"]["name"],
            "model_openness_framework": mof_class(label),
            "traceability": traceability(label).as_dict(),
            "compute_shares": compute_shares(label),
        }
        return json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    raise UsageError(f"unknown export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")


__all__ = ["EXPORT_FORMATS", "export_label", "to_cyclonedx", "to_hf_card", "to_spdx"]
