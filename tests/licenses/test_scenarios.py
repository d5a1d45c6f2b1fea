"""The issue's scenarios, each with the exact obligations and violations expected.

Each expectation is a set of (licence, ancestor, kind) triples written out by hand from the
licence texts, so a change in the data or the engine that adds, drops or moves a term fails here.
"""

from __future__ import annotations

from typing import Any

from modeltrace.licenses import DeploymentProfile, check_compliance, lineage_from_data, load_catalog
from modeltrace.licenses.engine import ComplianceReport


def run(tree: dict[str, Any], **profile: Any) -> ComplianceReport:
    return check_compliance(lineage_from_data(tree), DeploymentProfile(**profile), load_catalog())


def triples(findings) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return {(finding.license, finding.ancestor, finding.kind) for finding in findings}


COMPOSER_2 = {
    "name": "composer-2",
    "license": "proprietary",
    "parents": [{"name": "kimi-k2.5", "license": "kimi-k2.5", "relation": "finetune"}],
}


def test_composer_2_on_kimi_k2_5_must_display_kimi_at_80m_monthly_revenue() -> None:
    report = run(COMPOSER_2, use="commercial", distribution="hosted", mau=2_000_000, monthly_revenue_usd=80e6)
    assert triples(report.obligations) == {("kimi-k2.5", "kimi-k2.5", "display")}
    (display,) = report.obligations
    assert display.text.startswith('Prominently display "Kimi K2.5" on the user interface')
    assert "US$80,000,000 monthly revenue > US$20,000,000" in display.text
    assert 'you shall prominently display "Kimi K2.5" on the user interface' in display.clause
    assert display.source_url == "https://huggingface.co/moonshotai/Kimi-K2.5/blob/main/LICENSE"
    assert report.violations == ()
    assert report.tier == "commercial-restricted"
    assert report.exit_code == 1


def test_composer_2_below_both_kimi_thresholds_has_nothing_to_do() -> None:
    # "more than 20 million US dollars": exactly 20M does not trigger the display duty.
    report = run(
        COMPOSER_2, use="commercial", distribution="hosted", mau=100_000_000, monthly_revenue_usd=20e6
    )
    assert report.obligations == ()
    assert report.exit_code == 0


KIMI_DEV_72B = {
    "name": "Kimi-Dev-72B",
    "license": "mit",
    "parents": [{"name": "Qwen2.5-72B", "license": "qwen", "relation": "finetune"}],
}


def test_kimi_dev_72b_above_100m_users_needs_alibaba_s_grant() -> None:
    # "You cannot exercise your rights under this Agreement without our authorization": crossing
    # the threshold without a grant is a violation, not an obligation.
    report = run(KIMI_DEV_72B, use="commercial", distribution="hosted", mau=150_000_000)
    assert triples(report.violations) == {("qwen", "Qwen2.5-72B", "license_request")}
    assert triples(report.obligations) == {("qwen", "Qwen2.5-72B", "display")}  # "Built with Qwen"
    (request,) = report.violations
    assert "Request a licence from Alibaba Cloud" in request.text
    assert "--granted qwen" in request.text
    assert "more than 100 million monthly active users, You shall request a license from Us" in request.clause
    assert report.tier == "commercial-restricted"
    assert not report.compliant
    assert report.exit_code == 2


def test_kimi_dev_72b_with_alibaba_s_grant_declared() -> None:
    report = run(KIMI_DEV_72B, use="commercial", distribution="hosted", mau=150_000_000, grants=("qwen",))
    assert report.violations == ()
    assert triples(report.satisfied) == {("qwen", "Qwen2.5-72B", "license_request")}
    assert "You declared that Alibaba Cloud granted it" in report.satisfied[0].text
    assert report.as_dict()["profile"]["grants"] == ["qwen"]
    assert report.compliant
    assert report.exit_code == 1  # "Built with Qwen" remains


def test_kimi_dev_72b_weights_distribution_adds_the_notices_of_both_licences() -> None:
    report = run(KIMI_DEV_72B, use="commercial", distribution="weights", mau=1000)
    assert triples(report.obligations) == {
        ("mit", "Kimi-Dev-72B", "copyright_notice"),
        ("qwen", "Qwen2.5-72B", "display"),
        ("qwen", "Qwen2.5-72B", "license_copy"),
        ("qwen", "Qwen2.5-72B", "modification_notice"),
        ("qwen", "Qwen2.5-72B", "notice_file"),
    }


R1_DISTILL_LLAMA_70B = {
    "name": "DeepSeek-R1-Distill-Llama-70B",
    "license": "mit",
    "parents": [
        {"name": "Llama-3.3-70B-Instruct", "license": "llama3.3", "relation": "finetune"},
        {"name": "DeepSeek-R1", "license": "mit", "relation": "distilled-from-outputs"},
    ],
}


def test_deepseek_r1_distill_llama_70b_carries_llama_3_3_terms() -> None:
    report = run(R1_DISTILL_LLAMA_70B, use="commercial", distribution="weights")
    assert triples(report.obligations) == {
        ("mit", "DeepSeek-R1-Distill-Llama-70B", "copyright_notice"),
        ("llama3.3", "Llama-3.3-70B-Instruct", "display"),  # "Built with Llama"
        ("llama3.3", "Llama-3.3-70B-Instruct", "name_prefix"),  # name must begin with "Llama"
        ("llama3.3", "Llama-3.3-70B-Instruct", "license_copy"),
        ("llama3.3", "Llama-3.3-70B-Instruct", "notice_file"),
        ("llama3.3", "Llama-3.3-70B-Instruct", "use_restrictions"),
    }
    # DeepSeek-R1 (MIT) only contributed outputs: MIT says nothing about them.
    assert all(finding.ancestor != "DeepSeek-R1" for finding in report.obligations)
    display = next(finding for finding in report.obligations if finding.kind == "display")
    assert '"Built with Llama"' in display.text
    notice = next(finding for finding in report.obligations if finding.kind == "notice_file")
    assert "Llama 3.3 is licensed under the Llama 3.3 Community License" in notice.text
    assert report.violations == ()
    assert report.exit_code == 1


def test_the_published_r1_distill_name_breaks_the_llama_prefix_rule() -> None:
    report = run(
        R1_DISTILL_LLAMA_70B, use="commercial", distribution="weights", name="DeepSeek-R1-Distill-Llama-70B"
    )
    assert triples(report.violations) == {("llama3.3", "Llama-3.3-70B-Instruct", "name_prefix")}
    assert report.exit_code == 2
    renamed = run(R1_DISTILL_LLAMA_70B, use="commercial", distribution="weights", name="Llama-R1-Distill-70B")
    assert renamed.violations == ()
    assert triples(renamed.satisfied) == {("llama3.3", "Llama-3.3-70B-Instruct", "name_prefix")}


def test_a_model_distilled_from_llama_2_outputs_is_forbidden() -> None:
    tree = {
        "name": "my-student",
        "license": "apache-2.0",
        "parents": [{"name": "Llama-2-70b-chat", "license": "llama2", "relation": "distilled-from-outputs"}],
    }
    report = run(tree, use="research", distribution="hosted")
    assert triples(report.violations) == {("llama2", "Llama-2-70b-chat", "outputs_restricted")}
    assert "(excluding Llama 2 or derivative works thereof)" in report.violations[0].clause
    assert report.obligations == ()
    assert report.exit_code == 2


def test_llama_2_outputs_may_improve_a_llama_2_derivative() -> None:
    tree = {
        "name": "my-llama-2-student",
        "license": "llama2",
        "parents": [
            {"name": "Llama-2-7b", "license": "llama2", "relation": "finetune"},
            {"name": "Llama-2-70b-chat", "license": "llama2", "relation": "distilled-from-outputs"},
        ],
    }
    report = run(tree, use="commercial", distribution="hosted")
    assert report.violations == ()


def test_a_gemma_fine_tune_passes_on_use_restrictions_and_ships_the_notice() -> None:
    tree = {
        "name": "gemma-2-9b-support",
        "license": "gemma",
        "parents": [{"name": "gemma-2-9b", "license": "gemma", "relation": "finetune"}],
    }
    report = run(tree, use="commercial", distribution="weights")
    expected_kinds = {"pass_on_use_restrictions", "license_copy", "modification_notice", "notice_file",
                      "use_restrictions"}  # fmt: skip
    assert triples(report.obligations) == {("gemma", "gemma-2-9b-support", kind) for kind in expected_kinds}
    # Root and parent impose the same terms: one finding each, naming both ancestors.
    notice = next(finding for finding in report.obligations if finding.kind == "notice_file")
    assert notice.ancestors == ("gemma-2-9b-support", "gemma-2-9b")
    assert "Gemma is provided under and subject to the Gemma Terms of Use" in notice.text
    assert report.violations == ()
    assert report.tier == "commercial-restricted"


def test_a_cc_by_nc_grandparent_forbids_commercial_use() -> None:
    tree = {
        "name": "product-model",
        "license": "proprietary",
        "parents": [
            {
                "name": "open-middle",
                "license": "apache-2.0",
                "relation": "finetune",
                "parents": [{"name": "nc-base", "license": "cc-by-nc-4.0", "relation": "finetune"}],
            }
        ],
    }
    report = run(tree, use="commercial", distribution="hosted")
    assert triples(report.violations) == {("cc-by-nc-4.0", "nc-base", "commercial_use")}
    assert "for NonCommercial purposes only" in report.violations[0].clause
    assert report.tier == "research-only"
    assert report.exit_code == 2
    research = run(tree, use="research", distribution="hosted")
    assert research.violations == ()
    assert research.tier == "research-only"


def test_a_research_licence_qwen_2_5_3b_fine_tune_used_commercially_is_a_violation() -> None:
    tree = {
        "name": "qwen-3b-tuned",
        "license": "apache-2.0",
        "parents": [{"name": "Qwen2.5-3B-Instruct", "license": "qwen-research", "relation": "finetune"}],
    }
    report = run(tree, use="commercial", distribution="hosted")
    assert triples(report.violations) == {("qwen-research", "Qwen2.5-3B-Instruct", "commercial_use")}
    assert "FOR NON-COMMERCIAL PURPOSES ONLY" in report.violations[0].clause
    assert triples(report.obligations) == {("qwen-research", "Qwen2.5-3B-Instruct", "display")}
    assert report.tier == "research-only"
    assert report.exit_code == 2


ALL_APACHE = {
    "name": "app-model",
    "license": "apache-2.0",
    "parents": [
        {
            "name": "mid",
            "license": "Apache-2.0",  # SPDX spelling resolves to the same licence
            "relation": "finetune",
            "parents": [{"name": "base", "license": "apache-2.0", "relation": "quantized"}],
        }
    ],
}


def test_an_all_apache_chain_is_permissive_with_notices_only() -> None:
    report = run(ALL_APACHE, use="commercial", distribution="weights", mau=10**9, monthly_revenue_usd=1e9)
    kinds = {"license_copy", "modification_notice", "copyright_notice", "notice_file"}
    assert {(finding.license, finding.kind) for finding in report.obligations} == {
        ("apache-2.0", kind) for kind in kinds
    }
    assert all(finding.ancestors == ("app-model", "mid", "base") for finding in report.obligations)
    assert report.violations == ()
    assert report.tier == "commercial-permissive"
    assert report.exit_code == 1


def test_an_all_apache_chain_served_as_an_api_has_nothing_to_do() -> None:
    report = run(ALL_APACHE, use="commercial", distribution="hosted")
    assert report.obligations == ()
    assert report.exit_code == 0
    assert report.compliant


def test_a_chain_with_an_unknown_licence_reports_it_and_is_never_permissive() -> None:
    tree = {
        "name": "app-model",
        "license": "apache-2.0",
        "parents": [{"name": "mystery-base", "license": "acme-model-license-v3", "relation": "finetune"}],
    }
    report = run(tree, use="commercial", distribution="hosted")
    assert [(item.license, item.ancestor) for item in report.unknown] == [
        ("acme-model-license-v3", "mystery-base")
    ]
    assert report.tier == "unknown"
    assert not report.compliant
    assert report.exit_code == 1
    payload = report.as_dict()
    assert payload["unknown"][0]["license"] == "acme-model-license-v3"
    assert payload["tier"] != "commercial-permissive"
