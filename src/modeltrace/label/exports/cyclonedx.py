"""CycloneDX 1.6 ML-BOM for a label.

The model is the BOM's subject (``metadata.component``, type ``machine-learning-model``) with a
``modelCard``; its base models are ``pedigree.ancestors``; datasets are ``data`` components;
licences carry ``acknowledgement: declared``. The serial number is derived from the OMS root, so
the same label always exports to the same BOM.
"""

from __future__ import annotations

import uuid
from typing import Any

import modeltrace
from modeltrace.label.levels import compute_shares, traceability
from modeltrace.label.schema import Label, is_spdx_listed

SPEC_VERSION = "1.6"
_NAMESPACE = uuid.UUID("6f1c3d1e-8b8e-4a52-9a3c-6d0f1b2e7a11")  # fixed: modeltrace BOM serials


def _licenses(license_id: str | None) -> list[dict[str, Any]]:
    """CycloneDX licence choice: ``id`` for SPDX-listed ids, ``name`` for LicenseRef and others."""
    if not license_id:
        return []
    key = "id" if is_spdx_listed(license_id) else "name"
    return [{"license": {key: license_id, "acknowledgement": "declared"}}]


def _hashes(digests: dict[str, Any] | None, *keys: str) -> list[dict[str, str]]:
    digests = digests or {}
    return [{"alg": "SHA-256", "content": digests[key]} for key in keys if digests.get(key)]


def to_cyclonedx(label: Label) -> dict[str, Any]:
    """The CycloneDX 1.6 BOM (a JSON object) for ``label``."""
    model = label["model"]
    digests = model["digests"]
    architecture = model.get("architecture") or {}
    training = label.get("training") or {}

    dataset_components = []
    for index, dataset in enumerate(label["datasets"]):
        component: dict[str, Any] = {
            "type": "data",
            "bom-ref": f"dataset-{index}",
            "name": dataset["name"],
            "data": [{"type": "dataset", "name": dataset["name"]}],
        }
        if dataset.get("url"):
            component["data"][0]["contents"] = {"url": dataset["url"]}
        if dataset.get("fingerprint"):
            component["hashes"] = [{"alg": "SHA-256", "content": dataset["fingerprint"]}]
        if dataset.get("license"):
            component["licenses"] = _licenses(dataset["license"])
        dataset_components.append(component)

    ancestors = []
    for index, base in enumerate(label["base_models"]):
        ancestor: dict[str, Any] = {
            "type": "machine-learning-model",
            "bom-ref": f"base-{index}",
            "name": base["id"],
            "description": f"base model ({base['relation']})",
            "properties": [{"name": "modeltrace:relation", "value": base["relation"]}],
        }
        hashes = _hashes(base.get("digests"), "oms_root", "tensor_root")
        if hashes:
            ancestor["hashes"] = hashes
        if base.get("license"):
            ancestor["licenses"] = _licenses(base["license"])
        ancestors.append(ancestor)

    model_parameters: dict[str, Any] = {}
    if architecture.get("model_type"):
        model_parameters["architectureFamily"] = architecture["model_type"]
    if architecture.get("architectures"):
        model_parameters["modelArchitecture"] = ", ".join(architecture["architectures"])
    if dataset_components:
        model_parameters["datasets"] = [{"ref": component["bom-ref"]} for component in dataset_components]

    properties = [
        {"name": "modeltrace:oms_root", "value": digests["oms_root"]},
        {"name": "modeltrace:traceability_level", "value": traceability(label).name},
    ]
    if digests.get("tensor_root"):
        properties.append({"name": "modeltrace:tensor_root", "value": digests["tensor_root"]})
    if architecture.get("parameters") is not None:
        properties.append({"name": "modeltrace:parameters", "value": str(architecture["parameters"])})
    for key in ("log_sha256", "instruction_set_sha256"):
        if training.get(key):
            properties.append({"name": f"modeltrace:training_{key}", "value": training[key]})
    for stage in training.get("compute") or []:
        properties.append({"name": f"modeltrace:compute:{stage['stage']}", "value": f"{stage['flops']:.6g}"})
    for kind, share in compute_shares(label)["by_kind"].items():
        properties.append({"name": f"modeltrace:compute_share:{kind}", "value": share})

    model_component: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": "model",
        "name": model["name"],
        "hashes": _hashes(digests, "oms_root", "tensor_root"),
        "modelCard": {"modelParameters": model_parameters} if model_parameters else {},
        "properties": properties,
    }
    if model.get("version"):
        model_component["version"] = model["version"]
    if model.get("supplier"):
        model_component["supplier"] = {"name": model["supplier"]}
    if model.get("url"):
        model_component["externalReferences"] = [{"type": "distribution", "url": model["url"]}]
    if label["license"].get("id"):
        model_component["licenses"] = _licenses(label["license"]["id"])
    if ancestors:
        model_component["pedigree"] = {"ancestors": ancestors}

    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(_NAMESPACE, digests['oms_root'])}",
        "version": 1,
        "metadata": {
            **({"timestamp": label["created"]} if label.get("created") else {}),
            "tools": {
                "components": [
                    {"type": "application", "name": "modeltrace", "version": modeltrace.__version__}
                ]
            },
            "component": model_component,
        },
        "components": dataset_components,
        "dependencies": [
            {"ref": "model", "dependsOn": [component["bom-ref"] for component in dataset_components]},
        ],
    }
