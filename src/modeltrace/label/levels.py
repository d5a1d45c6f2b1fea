"""Which traceability level a label reaches, what is missing for the next, and compute shares.

* **L1 - architecture declared**: the label carries an architecture card (model type or
  architecture class from the config, or a tensor listing) and the model's digests.
* **L2 - weight provenance**: L1, plus the ancestry is pinned: every declared base model carries
  a content digest (or the label declares the model was trained from scratch), and at least one
  training dataset is identified (a dataset id, URL or fingerprint).
* **L3 - licensing complete**: L2, plus the licence of the model and of every base model is
  known (an SPDX id or a LicenseRef), so the commercial status of the whole ancestry can be
  decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from modeltrace.label.schema import Label


@dataclass(frozen=True)
class LevelReport:
    """``level`` is 0..3; ``missing`` lists what the label lacks to reach ``level + 1``."""

    level: int
    missing: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"L{self.level}" if self.level else "none"

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.name, "missing_for_next": list(self.missing)}


def _l1_gaps(label: Label) -> list[str]:
    architecture = label["model"].get("architecture") or {}
    gaps = []
    if not (
        architecture.get("model_type")
        or architecture.get("architectures")
        or architecture.get("tensor_count")
    ):
        gaps.append("an architecture card: a config.json with model_type/architectures, or readable weights")
    return gaps


def _l2_gaps(label: Label) -> list[str]:
    gaps = []
    bases = label["base_models"]
    if not bases and not label.get("from_scratch"):
        gaps.append("the base models (--base) or a declaration that the model was trained from scratch")
    for base in bases:
        digests = base.get("digests") or {}
        if not (digests.get("oms_root") or digests.get("tensor_root")):
            gaps.append(f"a content digest for base model '{base['id']}' (pass its local folder to --base)")
    if not label["datasets"]:
        gaps.append("at least one training dataset (--dataset ID, ID=URL or ID=PATH)")
    return gaps


def _l3_gaps(label: Label) -> list[str]:
    gaps = []
    if not label["license"].get("id"):
        gaps.append("the model's licence (--license SPDX_ID or LicenseRef-...)")
    for base in label["base_models"]:
        if not base.get("license"):
            gaps.append(f"the licence of base model '{base['id']}'")
    return gaps


def traceability(label: Label) -> LevelReport:
    """The highest level whose conditions (and those below) all hold."""
    for level, gaps in enumerate((_l1_gaps(label), _l2_gaps(label), _l3_gaps(label))):
        if gaps:
            return LevelReport(level, tuple(gaps))
    return LevelReport(3, ())


def _as_fraction_text(share: float) -> str:
    fraction = Fraction(share).limit_denominator(20)
    if abs(float(fraction) - share) > 0.005:
        return f"{share:.1%}"
    return (
        f"{fraction.numerator}/{fraction.denominator}"
        if fraction.denominator != 1
        else str(fraction.numerator)
    )


def compute_shares(label: Label) -> dict[str, Any]:
    """Each stage's, each kind's and each party's share of the total training compute.

    E.g. pre-training 1e24 FLOPs by the base publisher and 3e24 of post-training by the
    publisher give ``{"by_kind": {"pre-training": "1/4", "post-training": "3/4"}, ...}``.
    """
    stages = (label.get("training") or {}).get("compute") or []
    total = sum(float(stage["flops"]) for stage in stages)
    if total <= 0:
        return {"total_flops": total, "by_stage": {}, "by_kind": {}, "by_party": {}}
    by_kind: dict[str, float] = {}
    by_party: dict[str, float] = {}
    for stage in stages:
        flops = float(stage["flops"])
        kind = stage.get("kind") or "post-training"
        by_kind[kind] = by_kind.get(kind, 0.0) + flops
        party = stage.get("party") or "unspecified"
        by_party[party] = by_party.get(party, 0.0) + flops
    return {
        "total_flops": total,
        "by_stage": {stage["stage"]: _as_fraction_text(float(stage["flops"]) / total) for stage in stages},
        "by_kind": {kind: _as_fraction_text(flops / total) for kind, flops in by_kind.items()},
        "by_party": {party: _as_fraction_text(flops / total) for party, flops in by_party.items()},
    }
