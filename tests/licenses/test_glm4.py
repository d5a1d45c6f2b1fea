"""The glm-4-9b License (GLM-4-9B and its fine-tunes): registration, "Built with glm-4", the "glm-4"
name prefix and the ban on military use, each from the licence's own words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modeltrace import api
from modeltrace.licenses import DeploymentProfile, check_compliance, lineage_from_data, load_catalog


def run(name: str | None = None, **profile: Any) -> Any:
    tree = {"name": "mine", "license": "proprietary",
            "parents": [{"name": "glm-4-9b-chat", "license": "glm-4", "relation": "finetune"}]}  # fmt: skip
    settings = {"use": "commercial", "distribution": "hosted", "name": name, **profile}
    return check_compliance(lineage_from_data(tree), DeploymentProfile(**settings), load_catalog())


def kinds(findings: Any) -> set[str]:
    return {finding.kind for finding in findings}


def test_commercial_use_needs_registration_and_built_with_glm_4() -> None:
    report = run()
    assert kinds(report.obligations) == {"separate_agreement", "display", "name_prefix"}
    display = next(finding for finding in report.obligations if finding.kind == "display")
    assert '"Built with glm-4"' in display.clause
    registration = next(finding for finding in report.obligations if finding.kind == "separate_agreement")
    assert "Complete registration" in registration.clause
    assert report.exit_code == 1


def test_a_derived_model_s_name_must_begin_with_glm_4() -> None:
    assert "name_prefix" in kinds(run("glm-4-support-bot").satisfied)
    (violation,) = run("support-bot").violations
    assert violation.kind == "name_prefix" and '名称的开头添加 "glm-4"' in violation.clause


def test_research_use_with_shipped_weights_needs_no_registration() -> None:
    report = run(use="research", distribution="weights")
    assert "separate_agreement" not in kinds(report.obligations)
    assert {"license_copy", "copyright_notice"} <= kinds(report.obligations)


def test_military_use_is_forbidden() -> None:
    (finding,) = run(purposes=("military",)).violations
    assert finding.kind == "prohibited_use" and "军事" in finding.clause


def test_a_hugging_face_card_naming_the_glm_4_licence_resolves_to_it(tmp_path: Path) -> None:
    model = tmp_path / "glm-4-my-chat"
    model.mkdir()
    (model / "README.md").write_text(
        "---\nlicense: other\nlicense_name: glm-4\nbase_model: THUDM/glm-4-9b-chat\n---\n", encoding="utf-8"
    )
    report = api.check_license(model, use="research", distribution="weights").as_dict()
    assert {finding["license"] for finding in report["obligations"]} == {"glm-4"}
    assert {finding["ancestor"] for finding in report["obligations"]} == {"glm-4-my-chat"}
    # The card names its base but not the base's licence: unknown, never guessed.
    assert [entry["ancestor"] for entry in report["unknown"]] == ["THUDM/glm-4-9b-chat"]
