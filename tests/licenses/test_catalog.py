"""The licence knowledge base: every data file validates, ids resolve, quotes are consistent."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import jsonschema
import pytest
import yaml

from modeltrace.errors import LicenseError
from modeltrace.licenses import load_catalog
from modeltrace.licenses.catalog import Catalog, license_from_data

DATA = resources.files("modeltrace.licenses").joinpath("data")
FILES = sorted(entry.name for entry in DATA.iterdir() if entry.name.endswith(".yaml"))
SCHEMA = json.loads(
    resources.files("modeltrace.licenses").joinpath("schema.json").read_text(encoding="utf-8")
)

REQUIRED_IDS = [
    "kimi-k2", "kimi-k2.5", "qwen", "qwen-research", "tongyi-qianwen", "llama2", "llama3", "llama3.1",
    "llama3.2", "llama3.3", "llama4", "gemma", "deepseek", "mit", "apache-2.0", "cc-by-4.0",
    "cc-by-nc-4.0", "bigscience-openrail-m", "creativeml-openrail-m", "mistral-research",
]  # fmt: skip


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load(DATA.joinpath(name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", FILES)
def test_every_licence_file_matches_the_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(load(name), SCHEMA, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("name", FILES)
def test_the_file_is_named_after_its_canonical_key(name: str) -> None:
    assert load(name)["keys"][0] + ".yaml" == name


@pytest.mark.parametrize("license_id", REQUIRED_IDS)
def test_every_required_licence_is_known(license_id: str) -> None:
    assert load_catalog().get(license_id) is not None


@pytest.mark.parametrize(
    ("spelling", "key"),
    [("Apache-2.0", "apache-2.0"), ("MIT", "mit"), ("CC-BY-NC-4.0", "cc-by-nc-4.0"),
     ("CreativeML-OpenRAIL-M", "creativeml-openrail-m"), ("LLAMA3.1", "llama3.1"), (" qwen ", "qwen"),
     ("LicenseRef-Gemma-Terms-of-Use", "gemma"), ("LicenseRef-scancode-gemma-tou-2024-04-01", "gemma"),
     ("llama-3.1-license-2024", "llama3.1"), ("stable-diffusion-2022-08-22", "creativeml-openrail-m"),
     ("LicenseRef-llama3.1", "llama3.1"), ("mrl", "mistral-research"),
     ("tongyi-qianwen-2023", "tongyi-qianwen")],
)  # fmt: skip
def test_ids_resolve_case_insensitively_by_key_or_spdx(spelling: str, key: str) -> None:
    found = load_catalog().get(spelling)
    assert found is not None and found.key == key


def test_unknown_and_empty_ids_resolve_to_nothing() -> None:
    catalog = load_catalog()
    assert catalog.get("acme-license") is None
    assert catalog.get("") is None
    assert catalog.get(None) is None
    assert catalog.get("other") is None  # Hugging Face's "other" names no licence


@pytest.mark.parametrize("name", FILES)
def test_notice_texts_are_quoted_inside_their_clause(name: str) -> None:
    # A notice the licence prescribes must be its own words: the text appears inside the clause.
    for duty in load(name)["duties"]:
        if duty["kind"] == "notice_file" and "text" in duty:
            assert duty["text"] in duty["clause"], duty


@pytest.mark.parametrize("name", FILES)
def test_display_and_name_texts_are_quoted_inside_their_clause(name: str) -> None:
    data = load(name)
    for duty in data["duties"]:
        if duty["kind"] in {"display", "name_prefix"}:
            assert f'"{duty["text"]}"' in duty["clause"], duty
    for threshold in data["thresholds"]:
        if "display_text" in threshold:
            assert f'"{threshold["display_text"]}"' in threshold["clause"]


def test_tiers_follow_from_the_terms() -> None:
    tiers = {license_.key: license_.tier for license_ in load_catalog()}
    assert {key for key, tier in tiers.items() if tier == "research-only"} >= {
        "cc-by-nc-4.0", "qwen-research", "mistral-research"
    }  # fmt: skip
    for license_ in load_catalog():
        assert (license_.tier == "research-only") == (not license_.commercial_allowed)
    assert {key for key, tier in tiers.items() if tier == "commercial-permissive"} == {
        "mit", "apache-2.0", "cc-by-4.0", "openmdw-1.0"
    }  # fmt: skip


def test_llama_thresholds_count_users_on_each_version_release_date() -> None:
    catalog = load_catalog()
    dates = {key: catalog.get(key).version_release_date for key in ("llama2", "llama3", "llama3.1", "llama4")}  # type: ignore[union-attr]
    assert dates == {
        "llama2": "2023-07-18",
        "llama3": "2024-04-18",
        "llama3.1": "2024-07-23",
        "llama4": "2025-04-05",
    }
    for key in dates:
        (threshold,) = catalog.get(key).thresholds  # type: ignore[union-attr]
        assert (threshold.kind, threshold.mau, threshold.triggers) == (
            "mau_on_version_release_date", 700_000_000, "license_request"
        )  # fmt: skip


def test_a_file_missing_its_clause_is_rejected() -> None:
    broken = load("mit.yaml")
    del broken["duties"][0]["clause"]
    with pytest.raises(LicenseError, match="duties/0"):
        license_from_data(broken, "broken.yaml")


def test_a_file_with_an_unknown_field_is_rejected() -> None:
    broken = load("mit.yaml")
    broken["royalties"] = "none"
    with pytest.raises(LicenseError, match="royalties"):
        license_from_data(broken, "broken.yaml")


def test_a_research_only_licence_must_say_what_to_do() -> None:
    broken = load("cc-by-nc-4.0.yaml")
    del broken["commercial_use"]["todo"]
    with pytest.raises(LicenseError, match="todo"):
        license_from_data(broken, "broken.yaml")


def test_two_licences_may_not_claim_the_same_id() -> None:
    first = license_from_data(load("mit.yaml"), "mit.yaml")
    clash = copy.deepcopy(load("apache-2.0.yaml"))
    clash["keys"] = ["apache-2.0", "mit"]
    with pytest.raises(LicenseError, match="'mit'"):
        Catalog([first, license_from_data(clash, "clash.yaml")])


def test_as_dict_round_trips_the_quoted_terms() -> None:
    data = load_catalog().get("llama3.2").as_dict()  # type: ignore[union-attr]
    assert data["license"] == "llama3.2"
    assert data["geographic"][0]["regions"] == ["EU"]
    assert "European Union" in data["geographic"][0]["clause"]
    json.dumps(data)  # JSON-ready
