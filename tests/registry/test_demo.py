"""`make demo`'s registry step: the zoo goes into the registry, the false claims become conflicts,
and the last line is the command that serves it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrace import api
from modeltrace.cli import cmd_demo


def test_demo_registers_the_zoo_and_prints_the_serve_command(
    tmp_path: Path, lineage_models: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    zoo = tmp_path / "lineage-zoo"
    (zoo / "models").mkdir(parents=True)
    entries = []
    for name, parents, transform in (("llama-s0", [], "base"), ("llama-s0.rl", ["llama-s0"], "rl"),
                                     ("llama-s1", [], "base")):  # fmt: skip
        source = {"llama-s0": "base", "llama-s0.rl": "child", "llama-s1": "stranger"}[name]
        (zoo / "models" / name).symlink_to(lineage_models[source], target_is_directory=True)
        entries.append({"name": name, "path": f"models/{name}", "parents": parents, "transform": transform})
    (zoo / "zoo.json").write_text(json.dumps({"version": 1, "models": entries}))
    db = str(tmp_path / "registry.sqlite")
    monkeypatch.setattr(cmd_demo.console, "width", 200)
    cmd_demo._registry_demo(zoo, db)
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f"modeltrace serve --port 8080 --db {db}"
    assert "llama-s0.rl: declared base llama-s1, detected llama-s0" in out
    listing = api.registry_list(db=db)
    assert [m["name"] for m in listing["models"]] == ["llama-s0", "llama-s0.rl", "llama-s1"]
    cmd_demo._registry_demo(zoo, db)  # a second run adds nothing
    assert api.registry_list(db=db)["total"] == 3 and "known " in capsys.readouterr().out
