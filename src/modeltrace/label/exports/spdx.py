"""SPDX 3.0.1 JSON-LD with the AI and Dataset profiles.

Elements: an ``ai_AIPackage`` for the model (hashes: OMS root, tensor root), one per base model
(linked ``descendantOf``, with the relation in the comment), a ``dataset_DatasetPackage`` per
dataset (linked ``trainedOn``), and ``simplelicensing_LicenseExpression`` elements linked by
``hasDeclaredLicense``. Identifiers are ``urn:modeltrace:<oms_root>:...`` so the same label always
exports to the same document.
"""

from __future__ import annotations

from typing import Any

import modeltrace
from modeltrace.label.levels import compute_shares, traceability
from modeltrace.label.schema import Label

CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
CREATION = "_:creationinfo"


def _hash(value: str, comment: str) -> dict[str, Any]:
    return {"type": "Hash", "algorithm": "sha256", "hashValue": value, "comment": comment}


def _training_text(label: Label) -> str:
    training = label.get("training") or {}
    parts = []
    if training.get("log_sha256"):
        parts.append(f"training log sha256 {training['log_sha256']}")
    if training.get("instruction_set_sha256"):
        parts.append(f"fine-tuning instruction set sha256 {training['instruction_set_sha256']}")
    for stage in training.get("compute") or []:
        party = f" by {stage['party']}" if stage.get("party") else ""
        parts.append(
            f"{stage['stage']} ({stage.get('kind', 'post-training')}){party}: {stage['flops']:.3g} FLOPs"
        )
    shares = compute_shares(label)
    if shares["by_kind"]:
        parts.append(
            "compute share: " + ", ".join(f"{share} {kind}" for kind, share in shares["by_kind"].items())
        )
    return "; ".join(parts) or "NOASSERTION"


def to_spdx(label: Label) -> dict[str, Any]:
    """The SPDX 3.0.1 document (a JSON-LD object) for ``label``."""
    model = label["model"]
    digests = model["digests"]
    namespace = f"urn:modeltrace:{digests['oms_root']}"
    elements: list[dict[str, Any]] = []
    relationships: list[dict[str, Any]] = []

    def element(kind: str, local: str, **properties: Any) -> str:
        spdx_id = f"{namespace}:{local}"
        elements.append({"type": kind, "spdxId": spdx_id, "creationInfo": CREATION, **properties})
        return spdx_id

    def relate(source: str, relation: str, targets: list[str], comment: str | None = None) -> None:
        extra = {"comment": comment} if comment else {}
        local = f"relationship-{len(relationships)}"
        relationships.append(
            {
                "type": "Relationship",
                "spdxId": f"{namespace}:{local}",
                "creationInfo": CREATION,
                "from": source,
                "relationshipType": relation,
                "to": targets,
                **extra,
            }
        )

    def license_element(expression: str | None, local: str) -> str | None:
        if not expression:
            return None
        return element(
            "simplelicensing_LicenseExpression", local, simplelicensing_licenseExpression=expression
        )

    tool = element("Tool", "tool", name=f"modeltrace {modeltrace.__version__}")
    creator = element("Organization", "supplier", name=model["supplier"]) if model.get("supplier") else None
    agent = creator or element("SoftwareAgent", "agent", name="modeltrace")

    architecture = model.get("architecture") or {}
    hyperparameters = [
        {"type": "DictionaryEntry", "key": key, "value": str(value)}
        for key, value in sorted((architecture.get("hyperparameters") or {}).items())
    ]
    hashes = [_hash(digests["oms_root"], "OpenSSF model-signing root digest (files)")]
    if digests.get("tensor_root"):
        hashes.append(
            _hash(digests["tensor_root"], "modeltrace tensor root digest (names, dtypes, shapes, bytes)")
        )
    level = traceability(label)
    model_properties: dict[str, Any] = {
        "name": model["name"],
        "software_primaryPurpose": "model",
        "software_packageVersion": model.get("version") or "NOASSERTION",
        "releaseTime": label.get("created"),
        "suppliedBy": agent,
        "verifiedUsing": hashes,
        "ai_informationAboutTraining": _training_text(label),
        "comment": f"modeltrace traceability level {level.name}",
    }
    if model.get("url"):
        model_properties["software_downloadLocation"] = model["url"]
    if architecture.get("model_type") or architecture.get("architectures"):
        model_properties["ai_typeOfModel"] = [
            *([architecture["model_type"]] if architecture.get("model_type") else []),
            *architecture.get("architectures", []),
        ]
    if hyperparameters:
        model_properties["ai_hyperparameter"] = hyperparameters
    model_properties = {key: value for key, value in model_properties.items() if value is not None}
    model_id = element("ai_AIPackage", "model", **model_properties)

    model_license = license_element(label["license"].get("id"), "license-model")
    if model_license:
        relate(model_id, "hasDeclaredLicense", [model_license])

    for index, base in enumerate(label["base_models"]):
        base_hashes = [
            _hash(value, f"{key} of the base model")
            for key, value in sorted((base.get("digests") or {}).items())
            if value
        ]
        base_properties: dict[str, Any] = {"name": base["id"], "software_primaryPurpose": "model"}
        if base_hashes:
            base_properties["verifiedUsing"] = base_hashes
        base_id = element("ai_AIPackage", f"base-{index}", **base_properties)
        relate(model_id, "descendantOf", [base_id], comment=f"base_model_relation: {base['relation']}")
        base_license = license_element(base.get("license"), f"license-base-{index}")
        if base_license:
            relate(base_id, "hasDeclaredLicense", [base_license])

    dataset_ids = []
    for index, dataset in enumerate(label["datasets"]):
        dataset_properties: dict[str, Any] = {
            "name": dataset["name"],
            "software_primaryPurpose": "data",
            "dataset_datasetType": ["noAssertion"],
        }
        if dataset.get("url"):
            dataset_properties["software_downloadLocation"] = dataset["url"]
        if dataset.get("fingerprint"):
            dataset_properties["verifiedUsing"] = [
                _hash(dataset["fingerprint"], "OMS root of the dataset files")
            ]
        dataset_id = element("dataset_DatasetPackage", f"dataset-{index}", **dataset_properties)
        dataset_ids.append(dataset_id)
        dataset_license = license_element(dataset.get("license"), f"license-dataset-{index}")
        if dataset_license:
            relate(dataset_id, "hasDeclaredLicense", [dataset_license])
    if dataset_ids:
        relate(model_id, "trainedOn", dataset_ids)

    all_ids = [item["spdxId"] for item in elements + relationships]
    document = {
        "type": "SpdxDocument",
        "spdxId": f"{namespace}:document",
        "creationInfo": CREATION,
        "name": f"Provenance of {model['name']}",
        "profileConformance": ["core", "software", "ai", "dataset", "simpleLicensing"],
        "rootElement": [model_id],
        "element": all_ids,
    }
    creation_info = {
        "type": "CreationInfo",
        "@id": CREATION,
        "specVersion": "3.0.1",
        "created": label.get("created") or "1970-01-01T00:00:00Z",
        "createdBy": [agent],
        "createdUsing": [tool],
    }
    return {"@context": CONTEXT, "@graph": [creation_info, document, *elements, *relationships]}
