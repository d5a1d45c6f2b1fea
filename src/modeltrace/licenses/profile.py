"""A deployment profile: how, where and at what scale the model is used, and for what purposes.

The categories of :data:`PURPOSES` are those the acceptable-use policies of model licences have in
common (the Llama AUP, Gemma's prohibited use policy, OpenRAIL Attachment A); a licence's data file
maps each of its prohibited-use clauses to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from modeltrace.errors import LicenseError
from modeltrace.licenses.regions import normalise_region

#: ``--purpose`` categories, with what each covers.
PURPOSES = {
    "military": "military, warfare or nuclear applications, espionage",
    "weapons": "weapons development, guns and illegal weapons",
    "surveillance": "surveillance of people",
    "biometric-identification": "biometric processing or identification of people",
    "medical-advice": "medical or health advice, the practice of medicine",
    "legal-advice": "legal advice, the practice of law",
    "financial-advice": "financial advice, the practice of a financial profession",
    "minors": "content or services involving or directed at minors (exploitation, harm)",
    "critical-infrastructure": "operating critical infrastructure, transportation or heavy machinery",
    "disinformation": "generating or spreading false information, fraud, impersonation",
    "automated-decisions": "fully automated decisions on people's legal rights (credit, jobs, housing)",
    "discrimination": "profiling or discriminating against people or groups",
    "malware": "malicious code, attacks on computer systems",
}

USES = ("commercial", "research")
DISTRIBUTIONS = ("hosted", "weights")


@dataclass(frozen=True)
class DeploymentProfile:
    """How the model will be deployed. ``region`` is the deployer's domicile (ISO code or ``EU``).

    ``mau`` and ``monthly_revenue_usd`` are the deployer's figures; ``release_date`` is the date
    those figures refer to (used to explain licences that count users on their own release date).
    ``grants`` are the licence ids whose licensor has granted the deployer the licence it must
    request above a threshold (Llama above 700 M users, Qwen above 100 M): without a grant, no
    rights can be exercised there, so crossing such a threshold is a violation.
    """

    use: str
    distribution: str
    mau: int = 0
    monthly_revenue_usd: float = 0
    name: str | None = None
    region: str | None = None
    release_date: date | None = None
    grants: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.use not in USES:
            raise LicenseError(f"Unknown use {self.use!r}; use one of: {', '.join(USES)}.")
        if self.distribution not in DISTRIBUTIONS:
            raise LicenseError(
                f"Unknown distribution {self.distribution!r}; use one of: {', '.join(DISTRIBUTIONS)}."
            )
        if isinstance(self.mau, bool) or not isinstance(self.mau, int) or self.mau < 0:
            raise LicenseError(f"Monthly active users must be a whole number, 0 or more, got {self.mau!r}.")
        # NaN compares false with everything: without this check it would pass every threshold
        # silently and end up as an invalid NaN in the JSON report.
        if not math.isfinite(self.monthly_revenue_usd) or self.monthly_revenue_usd < 0:
            raise LicenseError(
                f"Monthly revenue must be a finite amount, 0 or more, got {self.monthly_revenue_usd!r}."
            )
        if self.region is not None:
            object.__setattr__(self, "region", normalise_region(self.region))
        unknown = [purpose for purpose in self.purposes if purpose not in PURPOSES]
        if unknown:
            raise LicenseError(
                f"Unknown purpose {unknown[0]!r}; use one of: {', '.join(PURPOSES)} (see docs/licenses.md)."
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "use": self.use,
            "distribution": self.distribution,
            "mau": self.mau,
            "monthly_revenue_usd": self.monthly_revenue_usd,
            "name": self.name,
            "region": self.region,
            "release_date": self.release_date.isoformat() if self.release_date else None,
            "grants": list(self.grants),
            "purposes": list(self.purposes),
        }
