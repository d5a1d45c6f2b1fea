"""The licence knowledge base: ``data/*.yaml`` validated against ``schema.json`` into frozen values.

The YAML files hold no logic, only each licence's terms with the verbatim clause they come from.
This module turns them into :class:`License` values and resolves the ids users write to one
licence: modeltrace's keys (``llama3.1``), SPDX ids (``Apache-2.0``) or ``LicenseRef-`` ids,
ScanCode LicenseDB keys (``llama-3.1-license-2024``) and Hugging Face ``license:`` tags (or the
``license_name`` of ``license: other``). The engine never reads files; it receives a :class:`Catalog`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from modeltrace.errors import LicenseError

#: Duty kinds that only ask for notices to travel with copies; they never make a licence restrictive.
NOTICE_KINDS = frozenset(
    {"license_copy", "notice_file", "copyright_notice", "modification_notice", "attribution"}
)

#: Ids that name a family of licences rather than one: resolving them would guess. They are reported
#: as unknown with this hint (Hugging Face's ``openrail`` tag covers non-commercial members too).
FAMILIES = {
    "openrail": (
        "'openrail' is Hugging Face's tag for the OpenRAIL family, whose members differ (some are "
        "non-commercial): give the specific licence, e.g. creativeml-openrail-m, "
        "bigscience-openrail-m, bigcode-openrail-m, bigscience-bloom-rail-1.0 or openrail++."
    ),
    "openrail-m": (
        "'openrail-m' names the OpenRAIL-M family, not one licence: give the specific licence, e.g. "
        "creativeml-openrail-m, bigscience-openrail-m or bigcode-openrail-m."
    ),
}

#: Relations of the deployed model to an ancestor (see ``covers`` in the schema).
DERIVATIVES = "derivatives"
OUTPUTS = "outputs"


@dataclass(frozen=True)
class Duty:
    """Something a licensee must do (ship a notice, display a text, name the model ...)."""

    kind: str
    todo: str
    clause: str
    distribution: tuple[str, ...]
    covers: tuple[str, ...] = (DERIVATIVES,)
    text: str | None = None


@dataclass(frozen=True)
class Threshold:
    """A scale above which a licence demands more (display a name, request a licence ...)."""

    kind: str
    triggers: str
    commercial_only: bool
    todo: str
    clause: str
    mau: int | None = None
    monthly_revenue_usd: int | None = None
    revenue_12_months_usd: int | None = None
    annual_revenue_usd: int | None = None
    display_text: str | None = None
    covers: tuple[str, ...] = (DERIVATIVES,)


@dataclass(frozen=True)
class UseRestrictions:
    policy: str
    url: str
    examples: tuple[str, ...]
    clause: str


@dataclass(frozen=True)
class ProhibitedUse:
    """A clause forbidding some uses, mapped to the ``--purpose`` categories it covers."""

    categories: tuple[str, ...]
    policy: str  # where the clause is: the licence itself or its acceptable-use policy
    clause: str


@dataclass(frozen=True)
class NoDerivatives:
    """The licence lets no one share adapted material (CC ND)."""

    todo: str
    clause: str


@dataclass(frozen=True)
class GeographicCarveOut:
    regions: tuple[str, ...]
    applies_to_models: str  # "all" or "multimodal"
    todo: str
    clause: str
    note: str | None = None


@dataclass(frozen=True)
class SourceText:
    """Where the stored first-hand copy of a licence (``texts/<file>``) was copied from, and when."""

    file: str | None
    url: str
    retrieved: str
    note: str | None = None
    unverified: tuple[str, ...] = ()


@dataclass(frozen=True)
class License:
    """One licence of the knowledge base; every field mirrors ``schema.json``."""

    id: str  # SPDX id, else ScanCode's LicenseRef-scancode-<key>, else LicenseRef-<Name>
    keys: tuple[str, ...]
    scancode_key: str | None
    hf_license: str  # the Hub's model-card ``license:`` tag ("other" for custom licences)
    name: str
    licensor: str
    versions: tuple[str, ...]
    source_url: str
    commercial_allowed: bool
    commercial_clause: str
    commercial_todo: str | None
    commercial_covers: tuple[str, ...]
    flows_down: bool
    flows_down_clause: str
    outputs_treatment: str
    outputs_clause: str | None
    outputs_todo: str | None
    thresholds: tuple[Threshold, ...]
    duties: tuple[Duty, ...]
    use_restrictions: UseRestrictions | None
    geographic: tuple[GeographicCarveOut, ...]
    version_release_date: str | None = None
    text: SourceText | None = None
    hf_license_name: str | None = None  # the card's ``license_name`` when hf_license is "other"
    prohibited_uses: tuple[ProhibitedUse, ...] = ()
    no_derivatives: NoDerivatives | None = None
    former_ids: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The canonical short id (Hugging Face's where one exists)."""
        return self.keys[0]

    @property
    def tier(self) -> str:
        """research-only, commercial-restricted or commercial-permissive, derived from the terms.

        Derived rather than stored so that a data file can never contradict itself: any threshold,
        display or naming duty, flow-down of use restrictions, output restriction or regional
        carve-out makes a licence restrictive; notices alone do not.
        """
        if not self.commercial_allowed:
            return "research-only"
        restrictive = (
            self.thresholds
            or self.use_restrictions is not None
            or self.geographic
            or self.outputs_treatment == "restricted"
            or self.no_derivatives is not None
            or any(duty.kind not in NOTICE_KINDS for duty in self.duties)
        )
        return "commercial-restricted" if restrictive else "commercial-permissive"

    @property
    def ids(self) -> dict[str, str | None]:
        """The licence's id in each standard scheme."""
        return {
            "spdx": self.id,
            "scancode": self.scancode_key,
            "hf": self.hf_license,
            "hf_license_name": self.hf_license_name,
        }

    def accepted_ids(self) -> tuple[str, ...]:
        """Every spelling ``license check`` resolves to this licence (Hugging Face's 'other' excluded)."""
        names = [*self.keys, self.id, *self.former_ids]
        names += [name for name in (self.scancode_key, self.hf_license_name) if name]
        if self.hf_license != "other":
            names.append(self.hf_license)
        unique: dict[str, str] = {}
        for name in names:
            unique.setdefault(name.lower(), name)
        return tuple(unique.values())

    def as_dict(self) -> dict[str, Any]:
        """The licence as plain JSON-ready data (for ``license show --json``)."""
        return {
            "license": self.key,
            "id": self.id,
            "keys": list(self.keys),
            "ids": self.ids,
            "name": self.name,
            "licensor": self.licensor,
            "versions": list(self.versions),
            "version_release_date": self.version_release_date,
            "source_url": self.source_url,
            "tier": self.tier,
            "commercial_use": {
                "allowed": self.commercial_allowed,
                "covers": list(self.commercial_covers),
                "todo": self.commercial_todo,
                "clause": self.commercial_clause,
            },
            "flows_down": {"value": self.flows_down, "clause": self.flows_down_clause},
            "outputs": {
                "treatment": self.outputs_treatment,
                "todo": self.outputs_todo,
                "clause": self.outputs_clause,
            },
            "thresholds": [_plain(threshold) for threshold in self.thresholds],
            "duties": [_plain(duty) for duty in self.duties],
            "use_restrictions": _plain(self.use_restrictions) if self.use_restrictions else None,
            "geographic": [_plain(carve_out) for carve_out in self.geographic],
            "prohibited_uses": [_plain(rule) for rule in self.prohibited_uses],
            "no_derivatives": _plain(self.no_derivatives) if self.no_derivatives else None,
            "text": _plain(self.text) if self.text else None,
        }


def _plain(value: Any) -> dict[str, Any]:
    return {
        name: list(item) if isinstance(item, tuple) else item
        for name, item in vars(value).items()
        if item is not None
    }


class Catalog:
    """Licences by id; lookups are case-insensitive and accept every id a licence lists.

    An id two licences both claim (Kimi K2 and K2.5 are both ``other`` + ``modified-mit`` on the
    Hub) resolves to neither: :meth:`hint` names the candidates instead of guessing.
    """

    def __init__(self, licenses: Iterable[License]) -> None:
        self._licenses: dict[str, License] = {}
        self._by_name: dict[str, License] = {}
        claims: dict[str, list[License]] = {}
        for license_ in licenses:
            if license_.key in self._licenses:
                raise LicenseError(f"Two licence files use the key '{license_.key}'; keys must be unique.")
            self._licenses[license_.key] = license_
            for name in license_.accepted_ids():
                claims.setdefault(name.lower(), []).append(license_)
        self._ambiguous: dict[str, tuple[License, ...]] = {}
        for name, claimants in claims.items():
            if len(claimants) == 1:
                self._by_name[name] = claimants[0]
                continue
            # A licence's own key or id wins over another's Hub tag (gpt-oss models are tagged
            # apache-2.0); two licences with the same own id are an error in the data.
            own = [item for item in claimants if name in {key.lower() for key in (*item.keys, item.id)}]
            if len(own) > 1:
                names = ", ".join(f"'{item.key}'" for item in own)
                raise LicenseError(f"Licence id '{name}' is claimed by {names}.")
            if own:
                self._by_name[name] = own[0]
            else:
                self._ambiguous[name] = tuple(claimants)

    def get(self, license_id: str | None) -> License | None:
        """The licence for ``license_id`` (any accepted spelling), or None when it is not known.

        ``LicenseRef-<id>`` (how provenance labels write a non-SPDX id) resolves like ``<id>``.
        """
        if not license_id:
            return None
        name = license_id.strip().lower()
        found = self._by_name.get(name)
        if found is None and name.startswith("licenseref-"):
            found = self._by_name.get(name.removeprefix("licenseref-"))
        return found

    def hint(self, license_id: str | None) -> str | None:
        """Why an id does not resolve when it is a family or ambiguous id (None otherwise)."""
        if not license_id:
            return None
        name = license_id.strip().lower().removeprefix("licenseref-")
        if name in FAMILIES:
            return FAMILIES[name]
        if name in self._ambiguous:
            keys = " or ".join(item.key for item in self._ambiguous[name])
            return f"'{license_id}' names several licences ({keys}): give the specific one."
        return None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._licenses.values(), key=lambda license_: license_.key))

    def __len__(self) -> int:
        return len(self._licenses)


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("modeltrace.licenses").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate_license_data(data: Any, source: str) -> None:
    """Raise LicenseError unless ``data`` (one parsed YAML file) matches the licence schema."""
    import jsonschema  # imported here: it is slow to import and only needed when loading the catalog

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda error: list(error.path))
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.path) or "(top level)"
        raise LicenseError(
            f"Licence file '{source}' does not match the schema at {where}: {first.message}. "
            "Fix the file; see src/modeltrace/licenses/schema.json."
        )


def license_from_data(data: Mapping[str, Any], source: str) -> License:
    """Validate one parsed licence file and build its :class:`License`."""
    validate_license_data(data, source)
    commercial = data["commercial_use"]
    outputs = data["outputs"]
    restrictions = data["use_restrictions"]
    return License(
        id=data["id"],
        keys=tuple(data["keys"]),
        scancode_key=data["scancode_key"],
        hf_license=data["hf_license"],
        hf_license_name=data.get("hf_license_name"),
        former_ids=tuple(data.get("former_ids", ())),
        no_derivatives=NoDerivatives(**data["no_derivatives"]) if data.get("no_derivatives") else None,
        prohibited_uses=tuple(
            ProhibitedUse(**{**item, "categories": tuple(item["categories"])})
            for item in data.get("prohibited_uses", ())
        ),
        name=data["name"],
        licensor=data["licensor"],
        versions=tuple(data["versions"]),
        source_url=data["source_url"],
        version_release_date=data.get("version_release_date"),
        commercial_allowed=commercial["allowed"],
        commercial_clause=commercial["clause"],
        commercial_todo=commercial.get("todo"),
        commercial_covers=tuple(commercial.get("covers", (DERIVATIVES,))),
        flows_down=data["flows_down"]["value"],
        flows_down_clause=data["flows_down"]["clause"],
        outputs_treatment=outputs["treatment"],
        outputs_clause=outputs.get("clause"),
        outputs_todo=outputs.get("todo"),
        thresholds=tuple(
            Threshold(**{**item, "covers": tuple(item.get("covers", (DERIVATIVES,)))})
            for item in data["thresholds"]
        ),
        duties=tuple(
            Duty(
                **{
                    **item,
                    "distribution": tuple(item["distribution"]),
                    "covers": tuple(item.get("covers", (DERIVATIVES,))),
                }
            )
            for item in data["duties"]
        ),
        use_restrictions=(
            UseRestrictions(**{**restrictions, "examples": tuple(restrictions["examples"])})
            if restrictions
            else None
        ),
        geographic=tuple(
            GeographicCarveOut(**{**item, "regions": tuple(item["regions"])}) for item in data["geographic"]
        ),
        text=SourceText(**{**data["text"], "unverified": tuple(data["text"].get("unverified", ()))}),
    )


@cache
def load_catalog() -> Catalog:
    """Every licence shipped in ``modeltrace/licenses/data`` (read and validated once per process)."""
    folder = resources.files("modeltrace.licenses").joinpath("data")
    licenses = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".yaml"):
            continue
        try:
            data = yaml.safe_load(entry.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise LicenseError(f"Licence file '{entry.name}' is not valid YAML: {error}") from error
        licenses.append(license_from_data(data, entry.name))
    return Catalog(licenses)
