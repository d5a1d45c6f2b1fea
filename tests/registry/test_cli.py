"""The registry commands through the CLI: the JSON keys and exit codes the issue names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrace.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0, stream: str = "out") -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    assert (exit_info.value.code or 0) == code, captured
    return captured.out if stream == "out" else captured.err


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    return json.loads(_run(capsys, *args, "--json"))


def test_registry_commands(
    db_url: str, lineage_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db = ("--db", db_url)
    added = _json(capsys, "registry", "add", str(lineage_models["base"]), "--namespace", "lab", *db)
    assert added["created"] and added["model"]["namespace"] == "lab"
    child = _json(capsys, "registry", "add", str(lineage_models["child"]), "--name", "kid", *db)
    assert [(e["suspect"], e["base"]) for e in child["detected"]] == [("kid", "base")]
    listing = _json(capsys, "registry", "ls", *db)
    assert [m["name"] for m in listing["models"]] == ["base", "kid"]
    shown = _json(capsys, "registry", "show", "kid", *db)
    assert shown["detected"][0]["base"] == "base"
    lineage = _json(capsys, "lineage", "kid", *db)
    assert {"declared", "detected", "conflicts", "tree"} <= lineage.keys()
    assert [c["message"] for c in lineage["conflicts"]] == ["undeclared base base"]
    human = _run(capsys, "lineage", "kid", *db)
    assert "detected related" in human and "undeclared base base" in human
    ranking = _json(capsys, "identify", str(lineage_models["grandchild"]), *db)
    assert ranking["closest_ancestor"] in ("default/kid", "lab/base")
    token = _run(capsys, "token", "create", "--namespace", "lab", *db).strip()
    assert token.startswith("mt_")
    assert "removed default/kid" in _run(capsys, "registry", "rm", "kid", *db)
    _run(capsys, "registry", "show", "kid", *db, code=3)


def test_identify_without_registry_models_says_what_to_do(
    tmp_path: Path, lineage_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("identify", str(lineage_models["child"]), "--db", str(tmp_path / "empty.sqlite"))
    assert "registry add" in _run(capsys, *args, code=3, stream="err")


def test_bad_database_url_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    message = _run(capsys, "registry", "ls", "--db", "mysql://nobody@localhost/x", code=3, stream="err")
    assert "Unsupported registry database" in message
