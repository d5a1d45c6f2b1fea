"""One deployment scenario per licence, checked here and rendered as the table in docs/licenses.md.

Each expectation is the set of (licence, kind) findings written out by hand from the licence text.
The docs table is generated from this list: ``python tests/licenses/test_scenario_table.py --write``
rewrites it, and ``test_the_docs_table_is_generated_from_these_scenarios`` fails when it is stale.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from modeltrace.licenses import DeploymentProfile, check_compliance, lineage_from_data, load_catalog

DOCS = Path(__file__).parents[2] / "docs" / "licenses.md"
START, END = "<!-- scenario-table:start -->", "<!-- scenario-table:end -->"


@dataclass(frozen=True)
class Scenario:
    title: str
    parents: list[dict[str, Any]]
    profile: dict[str, Any]
    violations: set[tuple[str, str]] = field(default_factory=set)
    obligations: set[tuple[str, str]] = field(default_factory=set)
    satisfied: set[tuple[str, str]] = field(default_factory=set)
    exit_code: int = 1
    root_license: str = "proprietary"

    def run(self) -> Any:
        tree = {"name": "deployed", "license": self.root_license, "parents": self.parents}
        profile = {"use": "commercial", "distribution": "hosted", **self.profile}
        return check_compliance(lineage_from_data(tree), DeploymentProfile(**profile), load_catalog())


def of(license_id: str, *kinds: str) -> set[tuple[str, str]]:
    return {(license_id, kind) for kind in kinds}


def parent(name: str, license_id: str, relation: str = "finetune", **extra: Any) -> dict[str, Any]:
    return {"name": name, "license": license_id, "relation": relation, **extra}


SCENARIOS = [
    Scenario("Kimi-Dev-72B-style fine-tune of Qwen2.5-72B, hosted, 150 M MAU",
             [parent("Qwen2.5-72B", "qwen")], {"mau": 150_000_000},
             violations={("qwen", "license_request")}, obligations={("qwen", "display")}, exit_code=2),
    Scenario("... the same with Alibaba's grant declared (`--granted qwen`)",
             [parent("Qwen2.5-72B", "qwen")], {"mau": 150_000_000, "grants": ("qwen",)},
             obligations={("qwen", "display")}, satisfied={("qwen", "license_request")}),
    Scenario("Llama 3.1 fine-tune, research use, 800 M MAU",
             [parent("Llama-3.1-8B", "llama3.1")], {"use": "research", "mau": 800_000_000},
             violations={("llama3.1", "license_request")},
             obligations=of("llama3.1", "display", "name_prefix", "use_restrictions"),
             exit_code=2),
    Scenario("Llama 3 fine-tune used for weapons development (`--purpose weapons`)",
             [parent("Meta-Llama-3-8B", "llama3")], {"purposes": ("weapons",)},
             violations={("llama3", "prohibited_use")},
             obligations={("llama3", "display"), ("llama3", "name_prefix"), ("llama3", "use_restrictions")},
             exit_code=2),
    Scenario("LLaMA 1 fine-tune, research use, weights shipped",
             [parent("llama-7b", "llama1")], {"use": "research", "distribution": "weights"},
             obligations={("llama1", "license_copy"), ("llama1", "notice_file")}),
    Scenario("FLUX.1 [dev] fine-tune in a paid app",
             [parent("FLUX.1-dev", "flux-1-dev")], {},
             violations={("flux-1-dev-non-commercial", "commercial_use")},
             obligations={("flux-1-dev-non-commercial", "use_restrictions")}, exit_code=2),
    Scenario("SDXL (CreativeML Open RAIL++-M) fine-tune giving medical advice",
             [parent("sdxl-base", "openrail++")], {"purposes": ("medical-advice",)},
             violations={("openrail++", "prohibited_use")},
             obligations={("openrail++", "pass_on_use_restrictions"), ("openrail++", "use_restrictions")},
             exit_code=2),
    Scenario("A model under Hugging Face's bare `openrail` tag",
             [parent("sd-finetune", "openrail")], {}, exit_code=1),
    Scenario("Stable Diffusion 3.5 (Stability AI Community), US$200 k monthly revenue",
             [parent("sd3.5-large", "stability-ai-community")], {"monthly_revenue_usd": 200_000},
             violations={("stability-ai-community", "license_request")},
             obligations=of("stability-ai-community", "license_copy", "display", "use_restrictions"),
             exit_code=2),
    Scenario("A model distilled from Stability AI model outputs",
             [parent("sd3.5-large", "stability-ai-community", "distilled-from-outputs")], {},
             violations={("stability-ai-community", "outputs_restricted")}, exit_code=2),
    Scenario("Nemotron (NVIDIA Open Model License) fine-tune, weights shipped",
             [parent("nemotron", "nvidia-open-model")], {"distribution": "weights"},
             obligations=of("nvidia-open-model", "license_copy", "notice_file", "use_restrictions")),
    Scenario("OpenMDW-1.0 model served as an API",
             [parent("open-model", "OpenMDW-1.0")], {}, exit_code=0),
    Scenario("BLOOM (BigScience RAIL 1.0) chatbot giving medical advice",
             [parent("bloom", "bigscience-bloom-rail-1.0")], {"purposes": ("medical-advice",)},
             violations={("bigscience-bloom-rail-1.0", "prohibited_use")},
             obligations={("bigscience-bloom-rail-1.0", "pass_on_use_restrictions"),
                          ("bigscience-bloom-rail-1.0", "use_restrictions")}, exit_code=2),
    Scenario("StarCoder (BigCode Open RAIL-M) fine-tune, weights shipped",
             [parent("starcoder", "bigcode-openrail-m")], {"distribution": "weights"},
             obligations=of("bigcode-openrail-m", "pass_on_use_restrictions", "license_copy",
                            "modification_notice", "copyright_notice", "use_restrictions")),
    Scenario("Qwen-1.8B (Tongyi Qianwen research licence) used commercially",
             [parent("Qwen-1_8B", "tongyi-qianwen-research")], {},
             violations={("tongyi-qianwen-research", "commercial_use")}, exit_code=2),
    Scenario("Tencent Hunyuan model deployed by a company in South Korea",
             [parent("hunyuan", "tencent-hunyuan")], {"region": "KR"},
             violations={("tencent-hunyuan", "geographic")},
             obligations={("tencent-hunyuan", kind) for kind in
                          ("license_copy", "pass_on_use_restrictions", "use_restrictions")}, exit_code=2),
    Scenario("... the same deployed by a US company",
             [parent("hunyuan", "tencent-hunyuan")], {"region": "US"},
             obligations={("tencent-hunyuan", kind) for kind in
                          ("license_copy", "pass_on_use_restrictions", "use_restrictions")}),
    Scenario("CC BY-SA 4.0 model fine-tuned, weights shipped",
             [parent("sa-base", "cc-by-sa-4.0")], {"distribution": "weights"},
             obligations={("cc-by-sa-4.0", "attribution"), ("cc-by-sa-4.0", "share_alike")}),
    Scenario("CC BY-NC-SA 4.0 grandparent, commercial use",
             [parent("mid", "apache-2.0", parents=[parent("nc-sa-base", "cc-by-nc-sa-4.0")])], {},
             violations={("cc-by-nc-sa-4.0", "commercial_use")}, exit_code=2),
    Scenario("CC BY-NC-ND 4.0 model fine-tuned for research, weights shipped",
             [parent("nd-base", "cc-by-nc-nd-4.0")], {"use": "research", "distribution": "weights"},
             violations={("cc-by-nc-nd-4.0", "no_derivatives")},
             obligations={("cc-by-nc-nd-4.0", "attribution")}, exit_code=2),
    Scenario("gpt-oss-20b (Apache-2.0 + usage policy) served as is",
             [], {}, obligations={("gpt-oss", "use_restrictions")}, root_license="gpt-oss"),
    Scenario("MiniMax-Text-01 fine-tune for a defence contractor (`--purpose military`)",
             [parent("MiniMax-Text-01", "minimax")], {"purposes": ("military",)},
             violations={("minimax", "prohibited_use")},
             obligations={("minimax", "license_copy"), ("minimax", "use_restrictions")}, exit_code=2),
    Scenario("Falcon 2 11B fine-tune announced publicly, weights shipped",
             [parent("falcon-11B", "falcon-2-11b")], {"distribution": "weights"},
             obligations=of("falcon-2-11b", "pass_on_use_restrictions", "license_copy", "modification_notice",
                            "display", "use_restrictions")),
    Scenario("Yi-34B (Yi License 1.0) fine-tune in a commercial product",
             [parent("Yi-34B", "yi-1.0")], {},
             violations={("yi-1.0", "commercial_use")}, obligations={("yi-1.0", "attribution")}, exit_code=2),
    Scenario("ChatGLM3-6B fine-tune in a commercial product (registration required)",
             [parent("chatglm3-6b", "chatglm3-6b")], {},
             obligations={("chatglm3-6b", "separate_agreement")}),
    Scenario("DeepSeek (OpenRAIL-style) model used for fully automated credit decisions",
             [parent("deepseek-llm", "deepseek")], {"purposes": ("automated-decisions",)},
             violations={("deepseek", "prohibited_use")},
             obligations=of("deepseek", "pass_on_use_restrictions", "use_restrictions"), exit_code=2),
    Scenario("Gemma 2 fine-tune giving legal advice as a hosted service (`--purpose legal-advice`)",
             [parent("gemma-2-9b", "gemma")], {"purposes": ("legal-advice",)},
             violations={("gemma", "prohibited_use")},
             obligations=of("gemma", "pass_on_use_restrictions", "license_copy", "use_restrictions"),
             exit_code=2),
    Scenario("Stable Diffusion 1.5 (CreativeML Open RAIL-M) fine-tune scoring loan applicants",
             [parent("stable-diffusion-v1-5", "creativeml-openrail-m")],
             {"purposes": ("automated-decisions",)},
             violations={("creativeml-openrail-m", "prohibited_use")},
             obligations=of("creativeml-openrail-m", "pass_on_use_restrictions", "use_restrictions"),
             exit_code=2),
    Scenario("BigScience Open RAIL-M model making deepfakes (`--purpose disinformation`)",
             [parent("bigscience-model", "bigscience-openrail-m")], {"purposes": ("disinformation",)},
             violations={("bigscience-openrail-m", "prohibited_use")},
             obligations=of("bigscience-openrail-m", "pass_on_use_restrictions", "use_restrictions"),
             exit_code=2),
    Scenario("Llama 3.3 fine-tune for a defence contractor (`--purpose military`)",
             [parent("Llama-3.3-70B", "llama3.3")], {"purposes": ("military",)},
             violations={("llama3.3", "prohibited_use")},
             obligations=of("llama3.3", "display", "name_prefix", "use_restrictions"), exit_code=2),
    Scenario("GLM-4-9B fine-tune in a commercial app, published as `glm-4-support-bot`",
             [parent("glm-4-9b-chat", "glm-4")], {"name": "glm-4-support-bot"},
             obligations=of("glm-4", "separate_agreement", "display"), satisfied={("glm-4", "name_prefix")}),
]  # fmt: skip


def pairs(findings: Any) -> set[tuple[str, str]]:
    return {(finding.license, finding.kind) for finding in findings}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.title[:60])
def test_scenario(scenario: Scenario) -> None:
    report = scenario.run()
    assert pairs(report.violations) == scenario.violations
    assert pairs(report.obligations) == scenario.obligations
    assert pairs(report.satisfied) == scenario.satisfied
    assert report.exit_code == scenario.exit_code


def test_every_licence_added_in_v2_has_a_scenario() -> None:
    covered = {
        license_ for scenario in SCENARIOS for license_, _ in scenario.violations | scenario.obligations
    }
    covered |= {scenario.root_license for scenario in SCENARIOS}
    v2 = {"llama1", "flux-1-dev-non-commercial", "openrail++", "stability-ai-community", "nvidia-open-model",
          "openmdw-1.0", "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "tongyi-qianwen-research",
          "tencent-hunyuan", "cc-by-sa-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "gpt-oss",
          "minimax", "falcon-2-11b", "yi-1.0", "chatglm3-6b", "glm-4"}  # fmt: skip
    assert v2 - covered <= {"openmdw-1.0"}  # OpenMDW's scenario has nothing to do: exit 0
    assert len(load_catalog()) >= 35


def _result(scenario: Scenario) -> str:
    report = scenario.run()
    parts = [f"exit {report.exit_code}"]
    for title, findings in (("violation", report.violations), ("obligation", report.obligations)):
        if findings:
            listed = ", ".join(sorted(f"{finding.kind} ({finding.license})" for finding in findings))
            parts.append(f"{title}{'s' if len(findings) > 1 else ''}: {listed}")
    if report.satisfied:
        parts.append("satisfied: " + ", ".join(sorted(f"{finding.kind}" for finding in report.satisfied)))
    if report.unknown:
        parts.append("unknown: " + ", ".join(str(item.license) for item in report.unknown))
    return "; ".join(parts)


def render_table() -> str:
    rows = ["| Ancestry and deployment | Result |", "|---|---|"]
    rows += [f"| {scenario.title} | {_result(scenario)} |" for scenario in SCENARIOS]
    return "\n".join(rows)


def _docs_with_table(docs: str) -> str:
    before, _, rest = docs.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n{render_table()}\n{END}{after}"


def test_the_docs_table_is_generated_from_these_scenarios() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    assert START in docs and END in docs
    assert docs == _docs_with_table(docs), (
        "docs/licenses.md's scenario table is stale: run python tests/licenses/test_scenario_table.py --write"
    )


def test_the_docs_state_the_number_of_licences() -> None:
    count = len(load_catalog())
    assert f"the {count} licences modeltrace knows" in DOCS.read_text(encoding="utf-8")
    readme = (DOCS.parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"the {count} licences known" in readme


if __name__ == "__main__" and "--write" in sys.argv:
    DOCS.write_text(_docs_with_table(DOCS.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the scenario table of {DOCS}")
