"""``modeltrace license check|show|list``: exit codes gate CI, --json carries the contract keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrace.cli import main


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def lineage(tmp_path: Path, text: str) -> str:
    path = tmp_path / "lineage.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


COMPOSER = (
    "name: composer-2\nlicense: proprietary\nparents:\n"
    "  - {name: kimi-k2.5, license: kimi-k2.5, relation: finetune}\n"
)
PROFILE = ["--use", "commercial", "--distribution", "hosted"]


def test_obligations_exit_1_and_json_lists_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "license",
        "check",
        "--lineage",
        lineage(tmp_path, COMPOSER),
        *PROFILE,
        "--monthly-revenue",
        "80000000",
        "--json",
    ]
    code, out, _ = cli(argv, capsys)
    assert code == 1
    report = json.loads(out)
    assert report["tier"] == "commercial-restricted"
    assert report["violations"] == []
    (obligation,) = report["obligations"]
    assert {key: obligation[key] for key in ("license", "ancestor", "kind")} == {
        "license": "kimi-k2.5", "ancestor": "kimi-k2.5", "kind": "display"
    }  # fmt: skip
    assert 'prominently display "Kimi K2.5"' in obligation["clause"]


def test_nothing_to_do_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["license", "check", "--lineage", lineage(tmp_path, COMPOSER), *PROFILE], capsys)
    assert code == 0
    assert "compliant, nothing to do" in out


def test_violations_exit_2_with_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "name: app\nparents:\n  - {name: nc-base, license: cc-by-nc-4.0, relation: merge}\n"
    code, out, _ = cli(["license", "check", "--lineage", lineage(tmp_path, text), *PROFILE], capsys)
    assert code == 2
    assert "Violations" in out and "nc-base" in out and "research-only" in out


def test_unknown_licence_exits_1_and_is_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "name: app\nlicense: apache-2.0\nparents:\n  - {name: x, license: acme-1, relation: merge}\n"
    code, out, _ = cli(["license", "check", "--lineage", lineage(tmp_path, text), *PROFILE, "--json"], capsys)
    assert code == 1
    report = json.loads(out)
    assert report["tier"] == "unknown"
    assert report["unknown"] == [
        {"license": "acme-1", "ancestor": "x", "relation": "derivative", "text": report["unknown"][0]["text"]}
    ]


def test_a_model_folder_with_a_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "my-gemma"
    model.mkdir()
    (model / "README.md").write_text(
        "---\nlicense: gemma\nbase_model: google/gemma-2-9b\n---\n", encoding="utf-8"
    )
    code, out, _ = cli(
        ["license", "check", str(model), "--use", "research", "--distribution", "weights", "--json"], capsys
    )
    report = json.loads(out)
    assert code == 1
    # The base model's licence is not in the card: it is reported unknown, the card's own applies.
    assert [item["ancestor"] for item in report["unknown"]] == ["google/gemma-2-9b"]
    assert {item["license"] for item in report["obligations"]} == {"gemma"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--use", "internal", "--distribution", "hosted"], "Unknown use"),
     (["--use", "commercial", "--distribution", "hosted", "--release-date", "June"], "ISO date")],
)  # fmt: skip
def test_bad_option_values_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code, _, err = cli(["license", "check", "--lineage", lineage(tmp_path, COMPOSER), *extra], capsys)
    assert code == 3
    assert message in err


def test_unreadable_lineage_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(
        ["license", "check", "--lineage", lineage(tmp_path, "name: a\nparent: []\n"), *PROFILE], capsys
    )
    assert code == 3
    assert "unknown key" in err


def test_no_input_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["license", "check", *PROFILE], capsys)
    assert code == 3
    assert "Nothing to check" in err


def test_show_prints_terms_with_clauses(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["license", "show", "llama3.1", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["id"] == "LicenseRef-scancode-llama-3.1-license-2024"
    assert data["ids"] == {
        "spdx": "LicenseRef-scancode-llama-3.1-license-2024",
        "scancode": "llama-3.1-license-2024",
        "hf": "llama3.1",
        "hf_license_name": None,
    }
    assert any(duty["kind"] == "name_prefix" and duty["text"] == "Llama" for duty in data["duties"])
    code, out, _ = cli(["license", "show", "qwen"], capsys)
    assert code == 0 and "Built with Qwen" in out


def test_show_unknown_id_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["license", "show", "acme-1"], capsys)
    assert code == 3
    assert "No licence 'acme-1'" in err


def test_list_names_every_licence(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["license", "list", "--json"], capsys)
    assert code == 0
    keys = {item["license"] for item in json.loads(out)}
    assert {"kimi-k2.5", "qwen", "llama4", "gemma", "mistral-research"} <= keys
    assert len(keys) >= 20


@pytest.mark.parametrize("dropped", ["--use", "--distribution"])
def test_missing_profile_flag_exits_3_not_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dropped: str
) -> None:
    # Exit 2 means "violations" to a CI gate; forgetting a flag must not look like one.
    profile = list(PROFILE)
    index = profile.index(dropped)
    del profile[index : index + 2]
    code, _, err = cli(["license", "check", "--lineage", lineage(tmp_path, COMPOSER), *profile], capsys)
    assert code == 3
    assert dropped in err


KIMI_DEV = (
    "name: Kimi-Dev-72B\nlicense: mit\nparents:\n  - {name: Qwen2.5-72B, license: qwen, relation: finetune}\n"
)


def test_a_licence_to_request_is_a_violation_until_granted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["license", "check", "--lineage", lineage(tmp_path, KIMI_DEV), *PROFILE, "--mau", "150000000"]
    code, out, _ = cli([*argv, "--json"], capsys)
    report = json.loads(out)
    assert code == 2 and report["compliant"] is False
    assert [item["kind"] for item in report["violations"]] == ["license_request"]
    code, out, _ = cli([*argv, "--granted", "qwen", "--json"], capsys)
    report = json.loads(out)
    assert code == 1 and report["compliant"] is True
    assert report["profile"]["grants"] == ["qwen"]
    assert [item["kind"] for item in report["satisfied"]] == ["license_request"]
    code, out, _ = cli([*argv, "--granted", "qwen"], capsys)
    assert "granted: qwen" in out


def test_a_grant_declared_in_the_lineage_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "grants: [qwen]\n" + KIMI_DEV
    argv = ["license", "check", "--lineage", lineage(tmp_path, text), *PROFILE, "--mau", "150000000"]
    code, out, _ = cli([*argv, "--json"], capsys)
    assert code == 1
    assert json.loads(out)["profile"]["grants"] == ["qwen"]


def test_grants_belong_on_the_root_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "name: a\nparents:\n  - {name: b, license: qwen, relation: finetune, grants: [qwen]}\n"
    code, _, err = cli(["license", "check", "--lineage", lineage(tmp_path, text), *PROFILE], capsys)
    assert code == 3
    assert "'grants' belongs on the root" in err


def test_an_unknown_grant_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["license", "check", "--lineage", lineage(tmp_path, KIMI_DEV), *PROFILE, "--granted", "acme"]
    code, _, err = cli(argv, capsys)
    assert code == 3
    assert "Granted licence 'acme'" in err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e400"])
def test_non_finite_revenue_exits_3_and_never_prints_nan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    argv = ["license", "check", "--lineage", lineage(tmp_path, COMPOSER), *PROFILE, "--json"]
    code, out, err = cli([*argv, "--monthly-revenue", value], capsys)
    assert code == 3
    assert "NaN" not in out and "Infinity" not in out
    assert "finite" in err


@pytest.mark.parametrize(("value", "mau"), [("1.5e8", 150_000_000), ("150_000_000", 150_000_000), ("0", 0)])
def test_mau_accepts_scientific_notation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, mau: int
) -> None:
    argv = ["license", "check", "--lineage", lineage(tmp_path, KIMI_DEV), *PROFILE, "--json"]
    code, out, _ = cli([*argv, "--mau", value], capsys)
    report = json.loads(out)
    assert report["profile"]["mau"] == mau
    assert code == (2 if mau > 100_000_000 else 1)  # 1: "Built with Qwen"


@pytest.mark.parametrize("value", ["1.5", "many", "-3", "nan"])
def test_a_bad_mau_exits_3_not_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    argv = ["license", "check", "--lineage", lineage(tmp_path, KIMI_DEV), *PROFILE, "--mau", value]
    code, _, err = cli(argv, capsys)
    assert code == 3
    assert "Monthly active users" in err


def test_a_mistyped_option_exits_3_not_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Exit 2 means violations to a CI gate: Click's usage errors must not read as one.
    code, _, err = cli(
        ["license", "check", "--lineage", lineage(tmp_path, COMPOSER), *PROFILE, "--maus"], capsys
    )
    assert code == 3
    assert "--maus" in err


@pytest.mark.parametrize(
    ("region", "normalised"), [("de", "DE"), ("DEU", "DE"), ("UK", "GB"), ("EU", "EU"), ("kr", "KR")]
)
def test_region_accepts_iso_3166_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], region: str, normalised: str
) -> None:
    argv = ["license", "check", "--lineage", lineage(tmp_path, COMPOSER), *PROFILE, "--json"]
    code, out, _ = cli([*argv, "--region", region], capsys)
    assert code == 0
    assert json.loads(out)["profile"]["region"] == normalised


@pytest.mark.parametrize("region", ["XX", "Germany", "E U", "ZZZ"])
def test_an_unknown_region_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str], region: str) -> None:
    argv = ["license", "check", "--lineage", lineage(tmp_path, COMPOSER), *PROFILE, "--region", region]
    code, _, err = cli(argv, capsys)
    assert code == 3
    assert "Unknown region" in err


def test_the_docs_state_the_exit_codes_the_code_uses() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "licenses.md").read_text(encoding="utf-8")
    table = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in docs.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip() in {"0", "1", "2", "3"}
    }
    assert set(table) == {"0", "1", "2", "3"}
    assert table["2"] == "violations"
    assert "usage error" in table["3"]
    assert "also exit 2" not in docs


def test_list_shows_the_three_standard_ids(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["license", "list", "--json"], capsys)
    assert code == 0
    by_key = {item["license"]: item for item in json.loads(out)}
    assert by_key["llama3.1"]["ids"]["scancode"] == "llama-3.1-license-2024"
    qwen = {"spdx": "LicenseRef-Qwen-License-Agreement", "scancode": None, "hf": "other"}
    assert by_key["qwen"]["ids"] == {**qwen, "hf_license_name": "qwen"}
    code, out, _ = cli(["license", "list"], capsys)
    assert "ScanCode" in out and "HF tag" in out


def test_show_openrail_explains_the_family(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["license", "show", "openrail"], capsys)
    assert code == 3
    assert "OpenRAIL family" in " ".join(err.split())


def test_show_lists_prohibited_uses(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["license", "show", "deepseek", "--json"], capsys)
    assert code == 0
    rules = json.loads(out)["prohibited_uses"]
    assert {
        "categories": ["military"],
        "policy": rules[0]["policy"],
        "clause": "For military use in any way;",
    } in rules
    code, out, _ = cli(["license", "show", "cc-by-nc-nd-4.0"], capsys)
    assert code == 0 and "no_derivatives" in out
