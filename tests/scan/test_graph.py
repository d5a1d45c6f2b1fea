"""``modeltrace graph``: detected edges after a scan, and where they disagree with the declarations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrace import api
from modeltrace.cli import main
from tests.lineage.synthetic import make_params, write_model
from tests.scan.scan_helpers import write_models


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    assert (exit_info.value.code or 0) == 0, captured
    return captured.out


@pytest.fixture(scope="module")
def registry_with_false_claims(tmp_path_factory: pytest.TempPathFactory) -> str:
    """base, child (fine-tuned from base, but its card says stranger), stranger, and liar: an
    independent model whose card claims base."""
    folder = tmp_path_factory.mktemp("graph-models")
    write_models(folder, cards={"child": "---\nbase_model: stranger\n---\n# child\n"})
    liar = write_model(folder / "liar", make_params(3))
    (liar / "README.md").write_text("---\nbase_model: base\nbase_model_relation: finetune\n---\n")
    db = str(folder / "registry.sqlite")
    result = api.scan([str(folder)], workers=2, db=db)
    assert result["exit_code"] == 0 and result["totals"]["registered"] == 4, result
    return db


def test_graph_undeclared_lists_the_false_declarations(
    registry_with_false_claims: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = registry_with_false_claims
    result = json.loads(_cli(capsys, "graph", "--undeclared", "--json", "--db", db))
    assert result["undeclared_only"] and result["models"] == 4 and result["fingerprinted"] == 4
    assert [(e["suspect"], e["base"], e["declared"]) for e in result["edges"]] == [("child", "base", False)]
    found = {(item["model"], item["kind"], item["base"]) for item in result["disagreements"]}
    assert found == {
        ("child", "declared-base-mismatch", "base"),
        ("liar", "declared-base-not-detected", "base"),
    }
    messages = {item["message"] for item in result["disagreements"]}
    assert messages == {
        "declared base stranger, detected base",
        "declared base base, not detected in the weights",
    }


def test_graph_lists_every_detected_edge_with_its_declaration(
    registry_with_false_claims: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = registry_with_false_claims
    result = json.loads(_cli(capsys, "graph", "--json", "--db", db))
    assert not result["undeclared_only"]
    edges = {(e["suspect"], e["base"]): e for e in result["edges"]}
    assert set(edges) == {("child", "base")} and edges[("child", "base")]["verdict"] == "related"
    human = _cli(capsys, "graph", "--db", db)
    assert "child" in human and "declared base stranger, detected base" in human
    # A true declaration is no disagreement, and its edge says so.
    models = write_models(tmp_path / "honest", cards={"child": "---\nbase_model: base\n---\n"})
    honest_db = str(tmp_path / "honest.sqlite")
    api.scan([str(models["base"]), str(models["child"])], workers=1, db=honest_db)
    clean = api.registry_graph(db=honest_db)
    assert [(e["suspect"], e["base"], e["declared"]) for e in clean["edges"]] == [("child", "base", True)]
    assert clean["disagreements"] == []
    assert api.registry_graph(undeclared=True, db=honest_db)["edges"] == []


def test_an_empty_registry_has_an_empty_graph(tmp_path: Path) -> None:
    empty = api.registry_graph(db=str(tmp_path / "empty.sqlite"))
    assert empty == {
        "models": 0,
        "fingerprinted": 0,
        "edges": [],
        "disagreements": [],
        "undeclared_only": False,
    }
