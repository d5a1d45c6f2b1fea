"""The compliance engine: ancestry x deployment profile x licence catalog -> obligations, violations.

Pure: takes a :class:`~modeltrace.licenses.lineage.LineageNode` tree, a :class:`DeploymentProfile`
and a :class:`~modeltrace.licenses.catalog.Catalog`, reads no file. Every finding names the licence,
the ancestor it comes from and the verbatim clause. A licence the catalog does not know is reported
as unknown (and keeps the result from being compliant), never treated as permissive.

How an ancestor reaches the deployed model decides which terms apply:

- ``self``: the deployed model itself (its own licence applies: e.g. MIT on Kimi-Dev-72B);
- ``derivative``: every edge on the way is a weight relation (finetune, adapter, merge, ...);
- ``outputs``: some edge is ``distilled-from-outputs``; only terms that cover outputs apply,
  unless the licence makes output-trained models derivatives (Gemma, OpenRAIL, DeepSeek).

Licences whose terms do not flow down (MIT, Apache-2.0, CC-BY) bind a non-root ancestor's
derivatives only through their notice duties.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from modeltrace.errors import LicenseError
from modeltrace.licenses.catalog import DERIVATIVES, NOTICE_KINDS, OUTPUTS, Catalog, License
from modeltrace.licenses.lineage import OUTPUT_RELATION, LineageNode
from modeltrace.licenses.profile import DISTRIBUTIONS, PURPOSES, USES, DeploymentProfile
from modeltrace.licenses.regions import region_in
from modeltrace.licenses.report import Ancestor, ComplianceReport, Finding, UnknownLicense

__all__ = [
    "DISTRIBUTIONS",
    "PURPOSES",
    "TIERS",
    "USES",
    "Ancestor",
    "ComplianceReport",
    "DeploymentProfile",
    "Finding",
    "UnknownLicense",
    "check_compliance",
]

TIERS = ("research-only", "commercial-restricted", "commercial-permissive")

#: Licence ids meaning "all rights reserved by the owner": the deployer's own when on the root.
PROPRIETARY_IDS = frozenset({"proprietary", "all-rights-reserved"})


@dataclass
class _Reach:
    node: LineageNode
    path: tuple[str, ...]
    relations: set[str] = field(default_factory=set)


def check_compliance(root: LineageNode, profile: DeploymentProfile, catalog: Catalog) -> ComplianceReport:
    """Every obligation and violation that the licences in ``root``'s ancestry impose on ``profile``."""
    reaches = _reaches(root)
    granted = _granted_keys(profile.grants, catalog)
    # Licences the deployed model holds weights under: the exception of "restricted" output clauses
    # ("excluding Llama 2 or derivative works thereof") is judged against these.
    weight_licenses = {
        found.key
        for reach in reaches
        if reach.relations & {"self", "derivative"}
        for found in [catalog.get(reach.node.license)]
        if found is not None
    }
    findings = _Findings()
    unknown: list[UnknownLicense] = []
    tiers: list[str] = []
    ancestry: list[Ancestor] = []
    for reach in reaches:
        node, is_root = reach.node, "self" in reach.relations
        relation = "self" if is_root else ("derivative" if "derivative" in reach.relations else "outputs")
        license_ = catalog.get(node.license)
        ancestry.append(Ancestor(node.name, node.license, license_ is not None, relation, reach.path))
        if license_ is None:
            if node.license and node.license.lower() in PROPRIETARY_IDS:
                if not is_root:  # on the root it is the deployer's own model
                    findings.add("obligations", _proprietary(node, relation))
                    tiers.append("commercial-restricted")
                continue
            unknown.append(_unknown(node, relation, catalog.hint(node.license)))
            continue
        tier = _evaluate(license_, node, relation, reach, profile, weight_licenses, granted, findings)
        if tier is not None:
            tiers.append(tier)
    return ComplianceReport(
        model=root.name,
        profile=profile,
        tier=_overall_tier(tiers, bool(unknown)),
        obligations=findings.merged("obligations"),
        violations=findings.merged("violations"),
        satisfied=findings.merged("satisfied"),
        unknown=tuple(unknown),
        ancestry=tuple(ancestry),
    )


def _reaches(root: LineageNode) -> list[_Reach]:
    """Each distinct (name, licence) in the tree with every way it reaches the root."""
    reaches: dict[tuple[str, str | None], _Reach] = {}
    for node, path in root.walk():
        edges = [step.relation for step in path[1:]]
        if len(path) == 1:
            relation = "self"
        elif OUTPUT_RELATION in edges:
            relation = "outputs"
        else:
            relation = "derivative"
        key = (node.name.lower(), (node.license or "").lower() or None)
        reach = reaches.setdefault(key, _Reach(node, tuple(step.name for step in path)))
        reach.relations.add(relation)
    return list(reaches.values())


class _Findings:
    def __init__(self) -> None:
        self.lists: dict[str, list[Finding]] = {"obligations": [], "violations": [], "satisfied": []}

    def add(self, bucket: str, finding: Finding) -> None:
        self.lists[bucket].append(finding)

    def merged(self, bucket: str) -> tuple[Finding, ...]:
        """One finding per (licence, kind, text, clause); later ancestors with the same term are listed."""
        merged: dict[tuple[str, str, str, str], Finding] = {}
        for finding in self.lists[bucket]:
            # The clause is part of the key: two prohibited-use clauses of one policy stay apart.
            key = (finding.license, finding.kind, finding.text, finding.clause)
            if key in merged:
                first = merged[key]
                names = (
                    first.ancestors
                    if finding.ancestor in first.ancestors
                    else (*first.ancestors, finding.ancestor)
                )
                merged[key] = Finding(**{**vars(first), "ancestors": names})
            else:
                merged[key] = Finding(**{**vars(finding), "ancestors": (finding.ancestor,)})
        return tuple(merged.values())


def _evaluate(
    license_: License,
    node: LineageNode,
    relation: str,
    reach: _Reach,
    profile: DeploymentProfile,
    weight_licenses: set[str],
    granted: frozenset[str],
    findings: _Findings,
) -> str | None:
    """Add the findings of one ancestor's licence; return the tier it imposes (None: none applies)."""
    via_weights = bool(reach.relations & {"self", "derivative"})
    via_outputs = "outputs" in reach.relations
    as_derivative = via_weights or (via_outputs and license_.outputs_treatment == "derivative")

    def applies(covers: Iterable[str]) -> bool:
        covers = tuple(covers)
        return (as_derivative and DERIVATIVES in covers) or (via_outputs and OUTPUTS in covers)

    def finding(kind: str, text: str, clause: str) -> Finding:
        return Finding(
            license=license_.key,
            license_id=license_.id,
            license_name=license_.name,
            ancestor=node.name,
            relation=relation,
            kind=kind,
            text=text,
            clause=clause,
            source_url=license_.source_url,
        )

    tier = license_.tier if as_derivative else _outputs_tier(license_) if via_outputs else None
    restricted_outputs = via_outputs and not as_derivative and license_.outputs_treatment == "restricted"
    if restricted_outputs and license_.key not in weight_licenses:
        findings.add(
            "violations",
            finding("outputs_restricted", license_.outputs_todo or "", license_.outputs_clause or ""),
        )
    # Terms of a licence that does not flow down reach an ancestor's derivatives only as notices.
    full_terms = relation == "self" or license_.flows_down

    forbidden_commercial = not license_.commercial_allowed and applies(license_.commercial_covers)
    if full_terms and forbidden_commercial and profile.use == "commercial":
        findings.add(
            "violations",
            finding("commercial_use", license_.commercial_todo or "", license_.commercial_clause),
        )

    if full_terms:
        for threshold in license_.thresholds:
            if not applies(threshold.covers) or (threshold.commercial_only and profile.use != "commercial"):
                continue
            reason = _threshold_reason(threshold, license_, profile)
            if not reason:
                continue
            text = f"{threshold.todo} Triggered: {reason}."
            if threshold.triggers != "license_request":
                findings.add("obligations", finding(threshold.triggers, text, threshold.clause))
            elif license_.key in granted:
                text += f" You declared that {license_.licensor} granted it (--granted {license_.key})."
                findings.add("satisfied", finding("license_request", text, threshold.clause))
            else:
                # "You are not authorized to exercise any of the rights ... unless or until Meta
                # grants you such rights": until then every use is outside the licence.
                text += (
                    f" Until {license_.licensor} grants it you hold no rights under this licence; "
                    f"once granted, declare it with --granted {license_.key} (or 'grants:' in the "
                    "lineage file)."
                )
                findings.add("violations", finding("license_request", text, threshold.clause))

    for duty in license_.duties:
        if not full_terms and duty.kind not in NOTICE_KINDS:
            continue
        if not applies(duty.covers) or profile.distribution not in duty.distribution:
            continue
        if duty.kind == "name_prefix":
            bucket, text = _name_check(duty.text or "", duty.todo, profile.name)
            findings.add(bucket, finding("name_prefix", text, duty.clause))
        else:
            findings.add("obligations", finding(duty.kind, duty.todo, duty.clause))

    if full_terms and as_derivative and license_.use_restrictions is not None:
        policy = license_.use_restrictions
        examples = "; ".join(policy.examples)
        text = f"Comply with the {policy.policy} ({policy.url}); among other uses it forbids: {examples}."
        findings.add("obligations", finding("use_restrictions", text, policy.clause))

    # Sharing a model built on ND material shares Adapted Material; the original itself may be shared.
    no_derivatives = license_.no_derivatives
    if no_derivatives and relation != "self" and as_derivative and profile.distribution == "weights":
        findings.add("violations", finding("no_derivatives", no_derivatives.todo, no_derivatives.clause))

    if full_terms and as_derivative and profile.purposes:
        for rule in license_.prohibited_uses:
            forbidden = [purpose for purpose in profile.purposes if purpose in rule.categories]
            if forbidden:
                text = (
                    f"The {rule.policy} forbids this use ({', '.join(forbidden)}; the clause gives its "
                    "exact scope): it is not licensed. Drop it or replace this ancestor."
                )
                findings.add("violations", finding("prohibited_use", text, rule.clause))

    if full_terms and as_derivative and profile.region:
        for carve_out in license_.geographic:
            if not _region_matches(profile.region, carve_out.regions):
                continue
            if carve_out.applies_to_models == "all" or node.multimodal:
                findings.add("violations", finding("geographic", carve_out.todo, carve_out.clause))
            elif node.multimodal is None:
                text = f"Confirm that '{node.name}' is not a multimodal model: {carve_out.todo}"
                findings.add("obligations", finding("geographic", text, carve_out.clause))
    return tier


def _granted_keys(grants: Iterable[str], catalog: Catalog) -> frozenset[str]:
    """Canonical keys of the declared grants; an id the catalog does not know is refused."""
    keys = set()
    for grant in grants:
        found = catalog.get(grant)
        if found is None:
            raise LicenseError(
                f"Granted licence {grant!r} is not in the knowledge base; use an id from "
                "`modeltrace license list` (e.g. --granted llama3.1)."
            )
        keys.add(found.key)
    return frozenset(keys)


def _outputs_tier(license_: License) -> str | None:
    """The tier a licence imposes on a model trained only on its outputs (None: it says nothing)."""
    if license_.outputs_treatment == "restricted":
        return "commercial-restricted"
    if not license_.commercial_allowed and OUTPUTS in license_.commercial_covers:
        return "research-only"
    terms = [*license_.duties, *license_.thresholds]
    if any(OUTPUTS in term.covers and getattr(term, "kind", "") not in NOTICE_KINDS for term in terms):
        return "commercial-restricted"
    if any(OUTPUTS in term.covers for term in terms):
        return "commercial-permissive"
    return None


def _threshold_reason(threshold: Any, license_: License, profile: DeploymentProfile) -> str | None:
    """Why a threshold is crossed (None when it is not). Thresholds are strict: 'more than'."""
    mau, revenue = profile.mau, profile.monthly_revenue_usd
    if threshold.kind == "mau_or_monthly_revenue":
        reasons = []
        if threshold.mau is not None and mau > threshold.mau:
            reasons.append(f"{mau:,} monthly active users > {threshold.mau:,}")
        if threshold.monthly_revenue_usd is not None and revenue > threshold.monthly_revenue_usd:
            reasons.append(f"US${revenue:,.0f} monthly revenue > US${threshold.monthly_revenue_usd:,}")
        return " and ".join(reasons) or None
    if threshold.kind == "revenue_12_months_model_as_a_service":
        yearly = revenue * 12
        if profile.distribution != "hosted" or yearly <= (threshold.revenue_12_months_usd or 0):
            return None
        return (
            f"model-as-a-service revenue over 12 months, estimated as 12 x monthly revenue = "
            f"US${yearly:,.0f} > US${threshold.revenue_12_months_usd:,}"
        )
    if threshold.kind == "commercial_use":  # e.g. "must register" before any commercial use
        return "commercial use" if profile.use == "commercial" else None
    if threshold.kind == "annual_revenue":
        yearly = revenue * 12
        if yearly <= (threshold.annual_revenue_usd or 0):
            return None
        return (
            f"annual revenue, estimated as 12 x monthly revenue = US${yearly:,.0f} > "
            f"US${threshold.annual_revenue_usd:,}"
        )
    if threshold.mau is None or mau <= threshold.mau:
        return None
    reason = f"{mau:,} monthly active users > {threshold.mau:,}"
    if threshold.kind == "mau_on_version_release_date" and license_.version_release_date:
        released = date.fromisoformat(license_.version_release_date)
        reason += (
            f"; the licence counts users in the calendar month before its release date "
            f"({license_.version_release_date})"
        )
        if profile.release_date and profile.release_date > released + timedelta(days=31):
            reason += (
                f"; your figure is dated {profile.release_date.isoformat()}: this applies only if you "
                "already had that many users then"
            )
    return reason


def _name_check(prefix: str, todo: str, name: str | None) -> tuple[str, str]:
    """('obligations'|'satisfied'|'violations', text) for a name-prefix duty."""
    if name is None:
        return "obligations", todo
    if _begins_with(name, prefix):
        return "satisfied", f"{todo} '{name}' does."
    return "violations", f"{todo} '{name}' does not: rename it (e.g. '{prefix}-{name}')."


def _begins_with(name: str, prefix: str) -> bool:
    """Whether ``name`` begins with the whole word(s) ``prefix``: "Llamacorp-bot" does not begin with
    "Llama", "Llama3-8B" and "Llama-Guard" do; "Llama 30B" does not begin with "Llama 3".
    """
    name, prefix = _normalise_name(name), _normalise_name(prefix)
    if not name.startswith(prefix):
        return False
    rest = name[len(prefix) :]
    if not rest:
        return True
    # The next character must not continue the prefix's last word (a letter after a letter, a
    # digit after a digit).
    last, following = prefix[-1], rest[0]
    return not ((last.isalpha() and following.isalpha()) or (last.isdigit() and following.isdigit()))


def _normalise_name(text: str) -> str:
    # "Llama-3-Foo", "llama_3 foo" and "Llama 3 Foo" all begin with "Llama 3".
    return " ".join(text.replace("-", " ").replace("_", " ").lower().split())


def _region_matches(region: str, regions: Iterable[str]) -> bool:
    return region_in(region, tuple(regions))


def _proprietary(node: LineageNode, relation: str) -> Finding:
    return Finding(
        license=node.license or "proprietary",
        license_id="LicenseRef-Proprietary",
        license_name="Proprietary (no public licence)",
        ancestor=node.name,
        relation=relation,
        kind="separate_agreement",
        text=f"'{node.name}' is proprietary: confirm you hold an agreement with its owner covering this use.",
        clause="(no public licence text: all rights reserved by the owner)",
        source_url="",
    )


def _unknown(node: LineageNode, relation: str, hint: str | None) -> UnknownLicense:
    declared = node.license
    if declared is None:
        text = f"'{node.name}' declares no licence: find its licence before relying on it."
    elif hint:
        text = f"Licence '{declared}' of '{node.name}' is not one licence: {hint}"
    else:
        text = (
            f"Licence '{declared}' of '{node.name}' is not in the knowledge base: read it yourself "
            "(see `modeltrace license list`) and give its id in a lineage file."
        )
    return UnknownLicense(declared, node.name, relation, text)


def _overall_tier(tiers: list[str], has_unknown: bool) -> str:
    """The most restrictive tier; "unknown" when an unknown licence could make it stricter."""
    if "research-only" in tiers:
        return "research-only"  # nothing an unknown licence says can make it stricter than this
    if has_unknown:
        return "unknown"
    if "commercial-restricted" in tiers:
        return "commercial-restricted"
    return "commercial-permissive"
