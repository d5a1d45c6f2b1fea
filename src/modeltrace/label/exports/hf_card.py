"""The Hugging Face model-card YAML front-matter for a label.

Keys: ``license`` (the hub's lower-case id; ``other`` + ``license_name`` for LicenseRef licences),
``base_model`` (one id or a list), ``base_model_relation`` (the hub knows ``adapter``, ``merge``,
``quantized`` and ``finetune``; the label's other relations are written as ``finetune`` with the
exact relation under ``modeltrace``), ``datasets``, and a ``modeltrace`` block with the digests.
"""

from __future__ import annotations

from typing import Any

import yaml

from modeltrace.label.schema import Label

HUB_RELATIONS = ("adapter", "merge", "quantized", "finetune")


def _hub_license(license_id: str | None) -> dict[str, str]:
    if not license_id:
        return {}
    if license_id.startswith("LicenseRef-"):
        return {"license": "other", "license_name": license_id.removeprefix("LicenseRef-").lower()}
    return {"license": license_id.lower()}


def to_hf_card(label: Label) -> str:
    """A ``---``-delimited YAML block to paste at the top of README.md."""
    front: dict[str, Any] = {}
    front.update(_hub_license(label["license"].get("id")))
    bases = [base["id"] for base in label["base_models"]]
    if bases:
        front["base_model"] = bases[0] if len(bases) == 1 else bases
        relation = label["base_models"][0]["relation"]
        front["base_model_relation"] = relation if relation in HUB_RELATIONS else "finetune"
    if label["datasets"]:
        front["datasets"] = [dataset["name"] for dataset in label["datasets"]]
    digests = label["model"]["digests"]
    front["modeltrace"] = {
        "oms_root": digests["oms_root"],
        **({"tensor_root": digests["tensor_root"]} if digests.get("tensor_root") else {}),
        **({"relations": {base["id"]: base["relation"] for base in label["base_models"]}} if bases else {}),
    }
    body = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{body}---\n"
