"""--purpose: each ancestor's clause that forbids the purpose is a violation, with the quote."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from modeltrace.cli import main
from modeltrace.errors import LicenseError
from modeltrace.licenses import DeploymentProfile, check_compliance, lineage_from_data, load_catalog
from modeltrace.licenses.profile import PURPOSES


def run(tree: dict[str, Any], *purposes: str, use: str = "commercial") -> Any:
    profile = DeploymentProfile(use=use, distribution="hosted", purposes=purposes)
    return check_compliance(lineage_from_data(tree), profile, load_catalog())


def on(license_id: str, relation: str = "finetune") -> dict[str, Any]:
    return {"name": "mine", "license": "proprietary",
            "parents": [{"name": "base", "license": license_id, "relation": relation}]}  # fmt: skip


def prohibited(report: Any) -> list[Any]:
    return [finding for finding in report.violations if finding.kind == "prohibited_use"]


def test_the_llama_aup_forbids_military_use_with_its_words() -> None:
    (finding,) = prohibited(run(on("llama3"), "military"))
    assert finding.license == "llama3" and finding.ancestor == "base"
    assert finding.clause.startswith("Military, warfare, nuclear industries or applications, espionage")
    assert "Meta Llama 3 Acceptable Use Policy" in finding.text
    assert run(on("llama3"), "military").exit_code == 2


def test_a_purpose_no_clause_forbids_is_fine() -> None:
    assert prohibited(run(on("llama3"), "surveillance")) == []
    assert prohibited(run(on("apache-2.0"), "military")) == []


def test_each_ancestor_forbidding_the_purpose_is_reported() -> None:
    tree = on("deepseek")
    tree["parents"].append({"name": "flux", "license": "flux-1-dev", "relation": "merge"})
    findings = prohibited(run(tree, "military", use="research"))
    assert {(finding.license, finding.ancestor) for finding in findings} == {
        ("deepseek", "base"), ("flux-1-dev-non-commercial", "flux")
    }  # fmt: skip
    assert any(finding.clause == "For military use in any way;" for finding in findings)


def test_the_llama_aup_covers_unlicensed_professional_advice() -> None:
    for purpose in ("medical-advice", "legal-advice", "financial-advice"):
        (finding,) = prohibited(run(on("llama3.2"), purpose))
        assert "unlicensed practice of any profession" in finding.clause


def test_openrail_style_restrictions_flow_to_output_trained_models() -> None:
    # DeepSeek makes models trained on its outputs derivatives: its Attachment A binds them too.
    (finding,) = prohibited(run(on("deepseek", relation="distilled-from-outputs"), "minors"))
    assert "exploit or harm minors" in finding.clause


def test_the_gemma_prohibited_use_policy_is_mapped_from_google_s_own_page() -> None:
    for purpose in ("medical-advice", "legal-advice", "financial-advice"):
        (finding,) = prohibited(run(on("gemma"), purpose))
        assert "unlicensed practice of any vocation or profession" in finding.clause
        assert "Gemma Prohibited Use Policy" in finding.text
    for purpose in ("malware", "disinformation"):
        (finding,) = prohibited(run(on("gemma"), purpose))
        assert finding.clause.endswith("deceptive or fraudulent activities, scams, phishing, or malware.")
    (finding,) = prohibited(run(on("gemma"), "minors"))
    assert "child sexual abuse or exploitation" in finding.clause


@pytest.mark.parametrize("license_id", ["creativeml-openrail-m", "bigscience-openrail-m"])
def test_openrail_m_attachment_a_is_mapped(license_id: str) -> None:
    (finding,) = prohibited(run(on(license_id), "medical-advice"))
    assert finding.clause == "To provide medical advice and medical results interpretation;"
    (finding,) = prohibited(run(on(license_id), "automated-decisions"))
    assert finding.clause.startswith("For fully automated decision making")
    # Both make models trained on their outputs derivatives: Attachment A binds them too.
    assert prohibited(run(on(license_id, relation="distilled-from-outputs"), "minors"))


def test_bigscience_open_rail_m_forbids_deepfakes_without_consent() -> None:
    clauses = {finding.clause for finding in prohibited(run(on("bigscience-openrail-m"), "disinformation"))}
    assert (
        "To impersonate or attempt to impersonate (e.g. deepfakes) others without their consent;" in clauses
    )
    # CreativeML Open RAIL-M has no impersonation clause: only its false-information clause applies.
    (finding,) = prohibited(run(on("creativeml-openrail-m"), "disinformation"))
    assert "verifiably false information" in finding.clause


def test_the_llama_3_3_aup_is_mapped() -> None:
    findings = prohibited(run(on("llama3.3"), "weapons"))
    clauses = {finding.clause for finding in findings}
    assert "Guns and illegal weapons (including weapon development)" in clauses
    assert all("Llama 3.3 Acceptable Use Policy" in finding.text for finding in findings)


def test_an_unknown_purpose_is_refused() -> None:
    with pytest.raises(LicenseError, match="Unknown purpose 'spying'"):
        DeploymentProfile(use="research", distribution="hosted", purposes=("spying",))


def test_the_cli_help_lists_exactly_the_purposes() -> None:
    source = (Path(__file__).parents[2] / "src/modeltrace/cli/cmd_license.py").read_text(encoding="utf-8")
    listed = re.search(r"_PURPOSES = \((.*?)\)\n", source, re.S)
    assert listed is not None
    names = "".join(re.findall(r'"([^"]*)"', listed.group(1))).split(", ")
    assert names == list(PURPOSES)


def test_every_prohibited_use_names_known_categories() -> None:
    for license_ in load_catalog():
        for rule in license_.prohibited_uses:
            assert set(rule.categories) <= set(PURPOSES), license_.key


def test_purpose_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "l.yaml"
    path.write_text("name: bot\nparents:\n  - {name: l3, license: llama3, relation: finetune}\n")
    argv = ["license", "check", "--lineage", str(path), "--use", "commercial", "--distribution", "hosted"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--purpose", "weapons", "--purpose", "military", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert exit_info.value.code == 2
    assert report["profile"]["purposes"] == ["weapons", "military"]
    kinds = [item["kind"] for item in report["violations"]]
    assert kinds.count("prohibited_use") == 2
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--purpose", "spying"])
    assert exit_info.value.code == 3


@pytest.mark.parametrize("key", ["llama2", "llama3", "llama3.1", "llama3.2"])
def test_every_llama_aup_in_the_knowledge_base_forbids_weapons(key: str) -> None:
    findings = prohibited(run(on(key), "weapons", use="research"))
    assert "Guns and illegal weapons (including weapon development)" in {
        finding.clause for finding in findings
    }
    assert all("Acceptable Use Policy" in finding.text for finding in findings)


def test_research_use_does_not_lift_a_prohibited_use() -> None:
    # The AUPs make no commercial/research distinction.
    assert prohibited(run(on("llama3.1"), "military", use="research")) != []
