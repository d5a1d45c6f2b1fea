"""What the compliance engine reports: findings traced to clauses, unknown licences, the ancestry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modeltrace.licenses.profile import DeploymentProfile


@dataclass(frozen=True)
class Finding:
    """One obligation, violation or satisfied duty, traced to a licence clause and an ancestor."""

    license: str  # canonical key, e.g. "llama3.3"
    license_id: str  # SPDX id or LicenseRef-...
    license_name: str
    ancestor: str  # the closest ancestor it comes from
    relation: str  # how that ancestor reaches the deployed model: self, derivative, outputs
    kind: str
    text: str  # what to do (or what is wrong)
    clause: str  # the licence's own words
    source_url: str
    ancestors: tuple[str, ...] = ()  # every ancestor that imposes the same term

    def as_dict(self) -> dict[str, Any]:
        return {
            "license": self.license,
            "license_id": self.license_id,
            "license_name": self.license_name,
            "ancestor": self.ancestor,
            "ancestors": list(self.ancestors or (self.ancestor,)),
            "relation": self.relation,
            "kind": self.kind,
            "text": self.text,
            "clause": self.clause,
            "source_url": self.source_url,
        }


@dataclass(frozen=True)
class UnknownLicense:
    license: str | None
    ancestor: str
    relation: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "license": self.license,
            "ancestor": self.ancestor,
            "relation": self.relation,
            "text": self.text,
        }


@dataclass(frozen=True)
class Ancestor:
    """One model of the ancestry with how it reaches the deployed model."""

    name: str
    license: str | None
    known: bool
    relation: str  # self, derivative, outputs (derivative wins when both paths exist)
    path: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "license": self.license,
            "known": self.known,
            "relation": self.relation,
            "path": list(self.path),
        }


@dataclass(frozen=True)
class ComplianceReport:
    model: str
    profile: DeploymentProfile
    tier: str  # one of TIERS, or "unknown" when an unknown licence could change it
    obligations: tuple[Finding, ...]
    violations: tuple[Finding, ...]
    satisfied: tuple[Finding, ...]
    unknown: tuple[UnknownLicense, ...]
    ancestry: tuple[Ancestor, ...]

    @property
    def exit_code(self) -> int:
        """0 nothing to do, 1 obligations to fulfil (or licences to identify), 2 violations."""
        if self.violations:
            return 2
        return 1 if self.obligations or self.unknown else 0

    @property
    def compliant(self) -> bool:
        return not self.violations and not self.unknown

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "tier": self.tier,
            "compliant": self.compliant,
            "exit_code": self.exit_code,
            "profile": self.profile.as_dict(),
            "obligations": [finding.as_dict() for finding in self.obligations],
            "violations": [finding.as_dict() for finding in self.violations],
            "satisfied": [finding.as_dict() for finding in self.satisfied],
            "unknown": [item.as_dict() for item in self.unknown],
            "ancestry": [ancestor.as_dict() for ancestor in self.ancestry],
        }
