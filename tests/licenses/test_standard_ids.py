"""Every licence maps to its SPDX id (or LicenseRef-), ScanCode LicenseDB key and Hugging Face tag."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from modeltrace.licenses import DeploymentProfile, check_compliance, lineage_from_data, load_catalog

LICENSES = list(load_catalog())


def scancode_index() -> dict[str, dict]:
    # The ScanCode LicenseDB index that license-expression (a dependency of the test extra, through
    # cyclonedx-python-lib) ships: a real peer to check our keys and SPDX ids against.
    text = resources.files("license_expression").joinpath("data", "scancode-licensedb-index.json").read_text()
    return {entry["license_key"]: entry for entry in json.loads(text)}


@pytest.mark.parametrize("license_", LICENSES, ids=lambda item: item.key)
def test_the_scancode_key_and_spdx_id_agree_with_scancode(license_) -> None:  # type: ignore[no-untyped-def]
    index = scancode_index()
    if license_.scancode_key is None:
        # No ScanCode key: the id is our own LicenseRef, never a made-up scancode one.
        assert license_.id.startswith("LicenseRef-") and "scancode" not in license_.id
        assert not any(license_.id == entry.get("spdx_license_key") for entry in index.values())
        return
    entry = index[license_.scancode_key]
    assert not entry["is_deprecated"]
    # SPDX may list a licence after ScanCode's index was built (OpenMDW-1.0): the id ScanCode gives
    # must then be among the former ids, so both spellings resolve.
    assert entry["spdx_license_key"] in (license_.id, *license_.former_ids)


@pytest.mark.parametrize("license_", LICENSES, ids=lambda item: item.key)
def test_check_accepts_each_of_the_three_ids(license_) -> None:  # type: ignore[no-untyped-def]
    catalog = load_catalog()
    spellings = [license_.id, license_.scancode_key, license_.hf_license, license_.hf_license_name]
    for spelling in spellings:
        if spelling is None or spelling == "other" or catalog.hint(spelling):
            continue
        tree = {"name": "mine", "license": "proprietary", "parents": [
            {"name": "base", "license": spelling, "relation": "finetune"}]}  # fmt: skip
        report = check_compliance(
            lineage_from_data(tree), DeploymentProfile(use="research", distribution="hosted"), catalog
        )
        assert report.unknown == (), spelling
        assert report.ancestry[1].known


def test_non_spdx_openrail_ids_are_licenserefs() -> None:
    catalog = load_catalog()
    for key in ("creativeml-openrail-m", "bigscience-openrail-m"):
        license_ = catalog.get(key)
        assert license_ is not None and license_.id.startswith("LicenseRef-scancode-")
    # The old non-SPDX spellings still resolve.
    assert catalog.get("CreativeML-OpenRAIL-M") is catalog.get("creativeml-openrail-m")
    assert catalog.get("BigScience-OpenRAIL-M") is catalog.get("bigscience-openrail-m")


def test_openrail_is_a_family_reported_unknown_with_a_hint() -> None:
    catalog = load_catalog()
    assert catalog.get("openrail") is None
    tree = {"name": "sd-finetune", "license": "proprietary", "parents": [
        {"name": "base", "license": "openrail", "relation": "finetune"}]}  # fmt: skip
    report = check_compliance(
        lineage_from_data(tree), DeploymentProfile(use="commercial", distribution="hosted"), catalog
    )
    (unknown,) = report.unknown
    assert "OpenRAIL family" in unknown.text and "creativeml-openrail-m" in unknown.text
    assert report.exit_code == 1 and not report.compliant


def test_an_hf_license_name_two_licences_share_is_ambiguous() -> None:
    catalog = load_catalog()
    assert catalog.get("modified-mit") is None
    hint = catalog.hint("modified-mit")
    assert hint is not None and "kimi-k2" in hint and "kimi-k2.5" in hint
