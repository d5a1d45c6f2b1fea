"""Model Openness Framework (MOF, LF AI & Data, 2024): the class a label's components reach.

The MOF grades a release by which of 16 components are published under an open licence:

* **Class III - Open Model**: model architecture, final model parameters, technical report,
  evaluation results, model card, data card.
* **Class II - Open Tooling**: Class III plus training code, inference code, evaluation code,
  evaluation data, supporting libraries and tools.
* **Class I - Open Science**: Class II plus research paper, datasets, data pre-processing code,
  intermediate model parameters.

(Model metadata and sample model outputs are optional in the MOF and do not gate a class.) A
component counts when the label says it is available and its licence is an open one (OSI for
code, open-data or permissive for data, weights and documents); "available under a
non-commercial licence" does not count.
"""

from __future__ import annotations

from typing import Any

from modeltrace.label.schema import Label
from modeltrace.label.spdx_ids import OPEN_LICENSES

CLASS_III = (
    "model-architecture",
    "model-parameters",
    "technical-report",
    "evaluation-results",
    "model-card",
    "data-card",
)
CLASS_II = ("training-code", "inference-code", "evaluation-code", "evaluation-data", "supporting-libraries")
CLASS_I = ("research-paper", "datasets", "data-preprocessing-code", "intermediate-parameters")
OPTIONAL = ("model-metadata", "sample-outputs")
COMPONENTS = CLASS_III + CLASS_II + CLASS_I + OPTIONAL

CLASS_NAMES = {3: "Class III - Open Model", 2: "Class II - Open Tooling", 1: "Class I - Open Science"}


def _is_open(component: dict[str, Any] | None) -> bool:
    return bool(component and component.get("available") and component.get("license") in OPEN_LICENSES)


def mof_class(label: Label) -> dict[str, Any]:
    """``{"class": "Class III - Open Model" | ... | None, "missing_for_next": [...], ...}``.

    ``missing_for_next`` names each component still needed for the next class and why
    (not declared, or declared under a licence that is not open).
    """
    components = label.get("openness") or {}

    def gaps(names: tuple[str, ...]) -> list[str]:
        missing = []
        for name in names:
            component = components.get(name)
            if not component or not component.get("available"):
                missing.append(f"{name}: not released")
            elif not _is_open(component):
                missing.append(f"{name}: licence {component.get('license')!r} is not an open licence")
        return missing

    reached: int | None = None
    missing: list[str] = []
    for number, names in ((3, CLASS_III), (2, CLASS_II), (1, CLASS_I)):
        missing = gaps(names)
        if missing:
            break
        reached = number
    return {
        "class": CLASS_NAMES[reached] if reached else None,
        "next_class": CLASS_NAMES[reached - 1 if reached else 3] if reached != 1 else None,
        "missing_for_next": missing if reached != 1 else [],
        "open_components": sorted(name for name in components if _is_open(components[name])),
    }
