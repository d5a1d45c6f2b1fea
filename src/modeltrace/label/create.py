"""Build a label from a model on disk, the publisher's statements, and what the model says itself.

Statements given explicitly (command-line options) win; the gaps are pre-filled from the model
card front-matter, GGUF ``general.*`` metadata and config.json, and ``claims_source`` records
where each pre-filled field came from, so a reader can tell a publisher's statement from a copy
of the model card.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import modeltrace
from modeltrace.errors import LabelError, UsageError
from modeltrace.formats import open_model
from modeltrace.formats.source import ModelSource
from modeltrace.label._stream import sha256_file
from modeltrace.label.digest import ModelDigest, digest_model
from modeltrace.label.file_digest import file_manifest
from modeltrace.label.mof import COMPONENTS
from modeltrace.label.schema import RELATIONS, SCHEMA_ID, Label, spdx_license_id, validate_label
from modeltrace.types import Declared


@dataclass(frozen=True)
class ComputeStage:
    stage: str
    flops: float
    party: str | None = None
    kind: str | None = None  # "pre-training" / "post-training"; guessed from the stage name if None


@dataclass(frozen=True)
class Component:
    """A Model Openness Framework component the publisher releases."""

    name: str
    license: str | None
    url: str | None = None


_PRETRAINING = re.compile(r"^(base|pre-?train(ing)?)([-_ ].*)?$", re.IGNORECASE)


def parse_compute(text: str) -> ComputeStage:
    """``STAGE=FLOPS[@PARTY]``, e.g. ``pretraining=1e24@Meta`` or ``sft=3e24``."""
    stage, separator, rest = text.partition("=")
    flops_text, _, party = rest.partition("@")
    try:
        flops = float(flops_text)
    except ValueError:
        flops = -1.0
    if not separator or not stage.strip() or not flops >= 0 or flops == float("inf"):
        raise UsageError(
            f"--compute {text!r}: expected STAGE=FLOPS[@PARTY] with FLOPS >= 0, e.g. sft=3e24@Acme"
        )
    return ComputeStage(stage=stage.strip(), flops=flops, party=party.strip() or None)


def parse_component(text: str) -> Component:
    """``NAME=LICENSE[@URL]``, e.g. ``training-code=Apache-2.0@https://github.com/org/repo``."""
    name, _, rest = text.partition("=")
    license_text, _, url = rest.partition("@")
    if name.strip() not in COMPONENTS:
        raise UsageError(
            f"--component {text!r}: unknown component {name!r}; choose one of {', '.join(COMPONENTS)}"
        )
    return Component(
        name=name.strip(), license=spdx_license_id(license_text or None), url=url.strip() or None
    )


def _sha256_of(path: Path, what: str) -> str:
    """SHA-256 of a file (streamed), or the OMS root of a folder."""
    if path.is_dir():
        return file_manifest(path).root
    if not path.is_file():
        raise UsageError(f"{what} '{path}' does not exist")
    return sha256_file(path)


def resolve_base(spec: str, relation: str) -> dict[str, object]:
    """A base-model entry: a local path is digested and its declared licence read; an id is kept as is."""
    path = Path(spec).expanduser()
    if not path.exists():
        return {"id": spec, "relation": relation, "digests": None, "license": None, "source": "command line"}
    digest = digest_model(path)
    with open_model(path) as base_source:
        declared = base_source.declared
    return {
        "id": declared.name or (path.name if path.is_dir() else path.stem),
        "relation": relation,
        "digests": {"oms_root": digest.oms_root, "tensor_root": digest.tensor_root},
        "license": spdx_license_id(
            declared.license_name if declared.license == "other" else declared.license
        ),
        "source": f"command line (digested from {path.name})",
    }


def resolve_dataset(spec: str) -> dict[str, object]:
    """``ID``, ``ID=URL`` or ``ID=PATH`` (a local file or folder: its OMS root is the fingerprint)."""
    name, separator, where = spec.partition("=")
    if not name.strip():
        raise UsageError(f"--dataset {spec!r}: expected ID, ID=URL or ID=PATH")
    entry: dict[str, object] = {
        "name": name.strip(),
        "url": None,
        "fingerprint": None,
        "source": "command line",
    }
    if separator and "://" in where:
        entry["url"] = where
    elif separator:
        path = Path(where).expanduser()
        if not path.exists():
            raise UsageError(f"--dataset {spec!r}: '{where}' is neither a URL nor an existing path")
        entry["fingerprint"] = file_manifest(path).root
    return entry


def import_declared(
    label: Label, declared: Declared, source: str, relation: str | None = None, *, take_name: bool = False
) -> Label:
    """Fill the label's empty fields from a model's own claims (model card or GGUF metadata).

    ``take_name``: replace the model name with the declared one (when no name was given).
    """
    claims = label.setdefault("claims_source", {})
    # A publisher's explicit "from scratch" is their statement; a card naming a base does not
    # overwrite it (``verify --lineage`` is where the two are confronted).
    if not label["base_models"] and declared.base_models and not label.get("from_scratch"):
        stated = declared.base_model_relation if declared.base_model_relation in RELATIONS else None
        chosen = relation or stated or "finetune"
        label["base_models"] = [
            {"id": base, "relation": chosen, "digests": None, "license": None, "source": source}
            for base in declared.base_models
        ]
        claims["base_models"] = source + (
            "" if stated or relation else " (relation not stated; finetune assumed)"
        )
    if not label["datasets"] and declared.datasets:
        label["datasets"] = [
            {"name": name, "url": None, "fingerprint": None, "source": source} for name in declared.datasets
        ]
        claims["datasets"] = source
    if label["license"].get("id") is None and declared.license:
        declared_text = declared.license_name if declared.license == "other" else declared.license
        label["license"] = {"id": spdx_license_id(declared_text), "declared_as": declared.license}
        claims["license"] = source
        for component in (label.get("openness") or {}).values():
            if component.get("available") and component.get("license") is None:
                component["license"] = label["license"]["id"]
    if take_name and declared.name:
        label["model"]["name"] = declared.name
        claims["name"] = source
    return label


def _default_components(source: ModelSource, license_id: str | None) -> dict[str, dict[str, object]]:
    """Components the files themselves show are released, under the model's licence."""
    components: dict[str, dict[str, object]] = {}
    if source.config is not None or source.weights is not None:
        components["model-architecture"] = {"available": True, "license": license_id, "url": None}
    if source.weights is not None:
        components["model-parameters"] = {"available": True, "license": license_id, "url": None}
    if source.card or (source.path.is_dir() and (source.path / "README.md").is_file()):
        components["model-card"] = {"available": True, "license": license_id, "url": None}
    return components


def architecture_block(card: Mapping[str, Any]) -> dict[str, Any]:
    """The label's L1 architecture block: the card ``modeltrace inspect`` shows, as given (computed
    once, by :mod:`modeltrace.inspect`), plus two names labels of schema v1 have always carried:
    ``model_type`` (the card's ``architecture``) and ``parameters`` (its ``total_params``)."""
    return {"model_type": card.get("architecture"), "parameters": card.get("total_params"), **card}


def create_label(
    path: str | Path,
    *,
    card: Mapping[str, Any],
    name: str | None = None,
    bases: Iterable[str] = (),
    relation: str | None = None,
    base_weights: Mapping[str, float] | None = None,
    license: str | None = None,
    datasets: Iterable[str] = (),
    from_scratch: bool = False,
    training_log: str | Path | None = None,
    instruction_set: str | Path | None = None,
    compute: Iterable[ComputeStage] = (),
    components: Iterable[Component] = (),
    ignored: Iterable[str] | None = None,
    prefill: bool = True,
    digest: ModelDigest | None = None,
) -> Label:
    """Digest the model at ``path`` and assemble its label (validated against the schema).

    ``card``: the model's architecture card as ``inspect`` gives it (``api.inspect`` keys without the
    file-level ones); the label carries it unchanged (:func:`architecture_block`)."""
    if relation is not None and relation not in RELATIONS:
        raise UsageError(f"--relation {relation!r} is not one of {', '.join(RELATIONS)}")
    bases = list(bases)
    if from_scratch and bases:
        raise UsageError("--from-scratch contradicts --base: a model trained from scratch has no base model")
    model_path = Path(path).expanduser()
    if digest is None:
        kwargs = {"ignored": tuple(ignored)} if ignored is not None else {}
        digest = digest_model(model_path, **kwargs)  # type: ignore[arg-type]
    with open_model(model_path) as source:
        declared_sources = [(source.declared, source.declared.source or "model metadata")]
        model_format = source.format
        folder_name = source.name
        defaults = _default_components(source, spdx_license_id(license))
    label: Label = {
        "schema": SCHEMA_ID,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": f"modeltrace {modeltrace.__version__}",
        "model": {
            "name": name or folder_name,
            "format": model_format,
            "digests": {
                "oms_root": digest.oms_root,
                "tensor_root": digest.tensor_root,
                "files": dict(sorted(digest.files.files.items())),
                "tensors": dict(sorted(digest.tensors.tensors.items())) if digest.tensors else {},
                "ignored_paths": list(digest.files.ignored),
            },
            "architecture": architecture_block(card),
        },
        "from_scratch": from_scratch,
        "base_models": _with_weights(
            [(base, resolve_base(base, relation or "finetune")) for base in bases], base_weights
        ),
        "datasets": [resolve_dataset(spec) for spec in datasets],
        "training": {
            "log_sha256": _sha256_of(Path(training_log), "training log") if training_log else None,
            "instruction_set_sha256": (
                _sha256_of(Path(instruction_set), "instruction set") if instruction_set else None
            ),
            "compute": [_compute_entry(stage) for stage in compute],
        },
        "license": {"id": spdx_license_id(license), "declared_as": license} if license else {"id": None},
        "openness": {},
        "claims_source": {},
    }
    if prefill:
        for declared, where in declared_sources:
            import_declared(label, declared, where, relation, take_name=name is None)
    license_id = label["license"]["id"]
    label["openness"] = {
        component: {**entry, "license": entry["license"] or license_id}
        for component, entry in defaults.items()
    }
    for component in components:
        label["openness"][component.name] = {
            "available": True,
            "license": component.license,
            "url": component.url,
        }
    return validate_label(label)


def parse_base_weight(text: str) -> tuple[str, float]:
    """``ID=WEIGHT``, e.g. ``org/model-a=0.6``: a merge weight for one ``--base``."""
    base, separator, weight_text = text.rpartition("=")
    try:
        weight = float(weight_text)
    except ValueError:
        weight = -1.0
    if not separator or not base.strip() or not 0 < weight < float("inf"):
        raise UsageError(f"--base-weight {text!r}: expected ID=WEIGHT with WEIGHT > 0, e.g. org/model-a=0.6")
    return base.strip(), weight


def _with_weights(
    bases: list[tuple[str, dict[str, object]]], weights: Mapping[str, float] | None
) -> list[dict[str, object]]:
    """Attach each ``--base-weight`` to the base it names (as given to ``--base``, or its resolved id)."""
    given = dict(weights or {})
    for spec, entry in bases:
        for key in (spec, str(entry["id"])):
            if key in given:
                entry["weight"] = given.pop(key)
                break
    if given:
        raise UsageError(f"--base-weight names no --base: {', '.join(sorted(given))}")
    return [entry for _, entry in bases]


def _compute_entry(stage: ComputeStage) -> dict[str, object]:
    kind = stage.kind or ("pre-training" if _PRETRAINING.match(stage.stage) else "post-training")
    return {"stage": stage.stage, "kind": kind, "party": stage.party, "flops": stage.flops}


def merge_import(label: Label, path: str | Path) -> Label:
    """``label import``: fill gaps in ``label`` from the model card / GGUF metadata found at ``path``."""
    with open_model(Path(path).expanduser()) as source:
        declared = source.declared
    if declared == Declared():
        raise LabelError(
            f"'{path}' declares nothing to import (no model card front-matter or GGUF general.* keys)"
        )
    return validate_label(import_declared(label, declared, declared.source or str(path)))
