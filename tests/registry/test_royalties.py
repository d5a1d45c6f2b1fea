"""The pooled licensing repository end to end: labels from ``label create`` registered in a
registry, terms and revenue through the CLI, statements as JSON, CSV and a table (issue 17).

The ancestry is test_engine.py's CHAIN: A <- B <- C, where B's label gives A 1/4 of B and C's label
gives B 1/2 of C, so of C's revenue A is attributed 1/8 and B 3/8.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modeltrace import api
from modeltrace.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


CHAIN_LABELS = {
    # name: (declared base, compute stages)
    "A": (None, ["pretraining=2e24@alpha-labs"]),
    "B": ("A", ["pretraining=1e24", "sft=3e24@beta-corp"]),
    "C": ("B", ["pretraining=4e24", "rl=4e24@gamma-ai"]),
}


def register_chain(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for seed, (name, (base, compute)) in enumerate(CHAIN_LABELS.items()):
        folder = tmp_path / name
        folder.mkdir()
        weights = np.random.default_rng(seed).standard_normal((4, 4)).astype(np.float32)
        save_file({"w": weights}, str(folder / "model.safetensors"))
        label = tmp_path / f"{name}.label.json"
        argv = ["label", "create", str(folder), "-o", str(label), "--no-prefill", "--name", name]
        if base is not None:
            argv += ["--base", base, "--relation", "finetune"]
        for stage in compute:
            argv += ["--compute", stage]
        code, _, err = run(argv, capsys)
        assert code == 0, err
        code, _, err = run(
            ["registry", "add", str(label), "--db", db, "--namespace", f"ns-{name.lower()}"], capsys
        )
        assert code == 0, err


def test_statements_from_registered_labels_through_the_cli(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_chain(db_url, tmp_path, capsys)
    for argv in (
        ["royalties", "terms", "add", "alpha-labs", "A", "--rate", "10%"],
        ["royalties", "terms", "add", "beta-corp", "B", "--rate", "0.05", "--threshold", "100000"],
        ["royalties", "report", "C", "--period", "2026-11", "--amount", "1000000.00"],
    ):
        code, _, err = run([*argv, "--db", db_url], capsys)
        assert code == 0, err

    code, out, err = run(
        ["royalties", "statement", "alpha-labs", "--period", "2026-11", "--json", "--db", db_url], capsys
    )
    assert code == 0, err
    alpha = json.loads(out)
    assert alpha["total"] == "12500.00" and alpha["currency"] == "USD"
    [line] = alpha["lines"]
    assert (line["derivative"], line["model"], line["status"], line["share"]) == ("C", "A", "owed", "1/8")
    assert (line["revenue"], line["attributed_revenue"], line["fee"]) == (
        "1000000.00",
        "125000.00",
        "12500.00",
    )
    assert [(edge["model"], edge["base"], edge["share"]) for edge in line["trace"]] == [
        ("C", "B", "1/2"), ("B", "A", "1/4")
    ]  # fmt: skip
    assert line["trace"][0]["evidence"].startswith("label of C")

    code, out, err = run(
        ["royalties", "statement", "beta-corp", "--period", "2026-11", "--csv", "--db", db_url], capsys
    )
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[1][:7] == ["C", "B", "owed", "3/8", "1000000.00", "375000.00", "13750.00"]
    assert rows[-1][0] == "TOTAL" and rows[-1][6] == "13750.00"

    code, out, err = run(
        ["royalties", "statement", "beta-corp", "--period", "2026-11", "--db", db_url], capsys
    )
    assert code == 0, err
    assert "TOTAL" in out and "13750.00" in out and "label of C" in out

    # Another period has no revenue reported: an empty statement, not an error.
    code, out, _ = run(
        ["royalties", "statement", "beta-corp", "--period", "2026-10", "--json", "--db", db_url], capsys
    )
    assert code == 0 and json.loads(out)["lines"] == [] and json.loads(out)["total"] == "0.00"


def test_reporting_again_replaces_the_figure_and_keeps_the_old_one(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_chain(db_url, tmp_path, capsys)
    with api.open_registry(db_url) as registry:
        api.royalties_terms_add("alpha-labs", "A", "0.10", registry=registry)
        first = api.royalties_report("C", "2026-11", "1000000.00", registry=registry)
        assert first["replaced"] is None
        second = api.royalties_report("ns-c/C", "2026-11", "800000.10", registry=registry)
        assert second["replaced"]["amount"] == "1000000.00"
        assert [entry["amount"] for entry in second["history"]] == ["1000000.00", "800000.10"]
        assert second["report"]["publisher"] == "ns-c"
        statement = api.royalties_statement("alpha-labs", "2026-11", registry=registry)
        # 1/8 of 800 000.10 is 100 000.0125 -> 100 000.01; 10 % of that unrounded is 10 000.00125.
        assert [(str(line.attributed), str(line.fee)) for line in statement.lines] == [
            ("100000.01", "10000.00")
        ]
        # Terms registered again replace the old ones.
        assert api.royalties_terms_add("alpha-labs", "A", "20%", registry=registry)["replaced"] is True
        assert (
            api.royalties_statement("alpha-labs", "2026-11", registry=registry).total == statement.total * 2
        )


def test_errors_exit_3_with_a_message(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_chain(db_url, tmp_path, capsys)
    cases = [
        (["royalties", "statement", "nobody", "--period", "2026-11"], "No royalty terms"),
        (["royalties", "statement", "nobody", "--period", "2026-13"], "YYYY-MM"),
        (["royalties", "report", "C", "--period", "2026-11", "--amount", "-5"], ">= 0"),
        (["royalties", "report", "C", "--period", "2026-11", "--amount", "lots"], "not a decimal"),
        (["royalties", "report", "unknown-model", "--period", "2026-11", "--amount", "5"], "No model"),
        (["royalties", "terms", "add", "alpha-labs", "A", "--rate", "150%"], "over 100 %"),
        (["royalties", "terms", "add", "alpha-labs", "A", "--rate", "0.1", "--currency", "usd"], "ISO 4217"),
    ]
    for argv, message in cases:
        code, _, err = run([*argv, "--db", db_url], capsys)
        assert code == 3, (argv, err)
        assert message in err, (argv, err)


def test_a_detected_undeclared_base_is_a_claim_to_review(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modeltrace.registry.records import Detection

    register_chain(db_url, tmp_path, capsys)
    with api.open_registry(db_url) as registry:

        def detected(suspect: str, base: str) -> Detection:
            return Detection(
                suspect_id=registry.model_id(suspect), base_id=registry.model_id(base), verdict="related",
                p_value=1e-30, log10_p=-30.0, test="fixed-points", relation=None, layer_map=None, evidence={},
                suspect_fingerprint="0" * 64, base_fingerprint="1" * 64, modeltrace_version="test",
            )  # fmt: skip

        # C declares A (through B): detecting it adds no claim. A declares no base, so a detection
        # of B in A is a claim to review for B's owner, never money owed.
        registry.record_detections([detected("C", "A"), detected("A", "B")])
        api.royalties_terms_add("delta", "A", "0.10", registry=registry)
        api.royalties_terms_add("delta", "B", "0.10", registry=registry)
        api.royalties_report("C", "2026-11", "1000.00", registry=registry)
        api.royalties_report("A", "2026-11", "5000.00", registry=registry)
        statement = api.royalties_statement("delta", "2026-11", registry=registry)
        assert [(line.derivative, line.model, line.status, str(line.fee)) for line in statement.lines] == [
            ("A", "B", "claim-to-review", "0.00"), ("C", "A", "owed", "12.50"), ("C", "B", "owed", "37.50"),
        ]  # fmt: skip
        assert "p = 1e-30" in statement.lines[0].note
        assert statement.total == sum(line.fee for line in statement.lines)


def test_the_service_statement_api_and_page(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fastapi.testclient import TestClient

    register_chain(db_url, tmp_path, capsys)
    with TestClient(api.create_service(db_url, private_reads=False)) as client:
        store = client.app.state.registry  # type: ignore[attr-defined]

        def bearer(namespace: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {api.token_create(namespace, registry=store)}"}

        terms = {"owner": "alpha-labs", "model": "A", "rate": "10%"}
        assert client.post("/api/royalties/terms", json=terms).status_code == 401
        assert client.post("/api/royalties/terms", json=terms, headers=bearer("other")).status_code == 403
        # A JSON number is a float: refused, like a float amount.
        assert (
            client.post(
                "/api/royalties/terms", json={**terms, "rate": 0.1}, headers=bearer("alpha-labs")
            ).status_code
            == 422
        )
        response = client.post("/api/royalties/terms", json=terms, headers=bearer("alpha-labs"))
        assert response.status_code == 201, response.text
        assert response.json()["terms"]["rate"] == "0.1"

        report = {"derivative": "C", "period": "2026-11", "amount": "1000000.00"}
        assert client.post("/api/royalties/reports", json=report, headers=bearer("ns-a")).status_code == 403
        assert (
            client.post(
                "/api/royalties/reports", json={**report, "amount": 1e6}, headers=bearer("ns-c")
            ).status_code
            == 422
        )
        response = client.post("/api/royalties/reports", json=report, headers=bearer("ns-c"))
        assert response.status_code == 201, response.text

        statement = client.get("/api/royalties/alpha-labs", params={"period": "2026-11"})
        assert statement.status_code == 200, statement.text
        body = statement.json()
        assert body["total"] == "12500.00"
        assert [(line["model"], line["share"], line["fee"]) for line in body["lines"]] == [
            ("A", "1/8", "12500.00")
        ]
        assert client.get("/api/royalties/nobody", params={"period": "2026-11"}).status_code == 404
        assert client.get("/api/royalties/alpha-labs", params={"period": "2026-13"}).status_code == 422
        assert client.get("/api/royalties/alpha-labs").status_code == 422

        page = client.get("/royalties/alpha-labs", params={"period": "2026-11"})
        assert page.status_code == 200
        ids = {name: store.model_id(name) for name in ("A", "B", "C")}
        html = page.text
        # The line links to the derivative and the base; the trace edges to the models whose labels
        # declared them (C's label declares C -> B, B's label B -> A).
        assert f'<a href="/models/{ids["C"]}">C</a>' in html and f'<a href="/models/{ids["A"]}">A</a>' in html
        assert (
            f'<a href="/models/{ids["C"]}">label of C' in html
            and f'<a href="/models/{ids["B"]}">label of B' in html
        )
        assert "12500.00" in html and "owed" in html
        hostile = client.get("/royalties/%3Cscript%3Ealert(1)", params={"period": "2026-11"})
        assert hostile.status_code == 404
        assert "<script>alert" not in hostile.text and "&lt;script&gt;" in hostile.text
        assert client.get("/royalties/alpha-labs", params={"period": "November"}).status_code == 422
        assert client.get("/royalties/alpha-labs").status_code == 200  # the period form alone


def test_the_statement_page_escapes_hostile_names(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fastapi.testclient import TestClient

    hostile = "<script>alert(1)</script>"
    folder = tmp_path / "hostile"
    folder.mkdir()
    save_file({"w": np.full((4, 4), 7, dtype=np.float32)}, str(folder / "model.safetensors"))
    label = tmp_path / "hostile.json"
    code, _, err = run(
        ["label", "create", str(folder), "-o", str(label), "--no-prefill", "--name", hostile, "--base", "A",
         "--relation", "finetune", "--compute", "pretraining=1e24", "--compute", "sft=1e24"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run(["registry", "add", str(label), "--db", db_url], capsys)
    assert code == 0, err
    with api.open_registry(db_url) as registry:
        api.royalties_terms_add("alpha-labs", "A", "0.10", registry=registry)
        api.royalties_report(hostile, "2026-11", "100.00", registry=registry)
    with TestClient(api.create_service(db_url, private_reads=False)) as client:
        page = client.get("/royalties/alpha-labs", params={"period": "2026-11"})
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "5.00" in page.text
