"""The accuracy harness (zoo/accuracy.py): the zoo version is checked, pair lists are read, and the
per-transform table counts what the comparisons said. The real comparisons run on the quick zoo in
tests/lineage/test_zoo_accuracy.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modeltrace import api
from modeltrace.cli import main
from modeltrace.errors import ZooError
from modeltrace.zoo.accuracy import read_pairs, run_pairs, summarise
from modeltrace.zoo.manifest import MANIFEST_VERSION

PAIRS = [
    {"suspect": "a.ft", "base": "a", "expected": "related", "relation": "finetune", "layer_map": {"0": 0}},
    {"suspect": "a.drop", "base": "a", "expected": "related", "relation": "layers-dropped",
     "layer_map": [0, 2]},
    {"suspect": "b", "base": "a", "expected": "unrelated", "relation": "independent"},
    {"suspect": "c", "base": "a", "expected": "unrelated", "relation": "independent"},
]  # fmt: skip

#: What a comparison says about each suspect (the fake below returns it).
ANSWERS = {
    "a.ft": {"verdict": "related", "log10_p": -40.0, "bytes_read": 1000, "layer_map": {"0": 0}},
    "a.drop": {"verdict": "related", "log10_p": -20.0, "bytes_read": 3000, "layer_map": {"0": 0, "1": 1}},
    "b": {"verdict": "unrelated", "log10_p": -0.5, "bytes_read": 2000, "layer_map": {}},
    "c": {"verdict": "related", "log10_p": -3.0, "bytes_read": 4000, "layer_map": {}},
}


def _write(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def _answer(suspect: Path, base: Path) -> dict[str, Any]:
    return ANSWERS[suspect.name]


def test_a_zoo_built_by_another_version_is_refused_with_the_reason(tmp_path: Path) -> None:
    manifest = _write(tmp_path / "zoo.json", {"version": MANIFEST_VERSION + 1, "models": [], "pairs": PAIRS})
    with pytest.raises(ZooError, match=f"version {MANIFEST_VERSION + 1}.*reads version {MANIFEST_VERSION}"):
        api.run_zoo_pairs(manifest)
    with pytest.raises(ZooError, match="version None"):  # a built zoo whose manifest lost its version
        api.zoo_accuracy(_write(tmp_path / "old.json", {"models": [], "pairs": PAIRS}))


def test_the_accuracy_command_names_the_version_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path / "zoo.json", {"version": MANIFEST_VERSION + 1, "models": [], "pairs": PAIRS})
    with pytest.raises(SystemExit) as exit_info:
        main(["zoo", "accuracy", str(tmp_path), "--json"])
    assert exit_info.value.code != 0
    assert f"reads version {MANIFEST_VERSION}" in " ".join(capsys.readouterr().err.split())


def test_hand_written_pair_lists_are_read_and_anything_else_is_refused(tmp_path: Path) -> None:
    assert read_pairs(_write(tmp_path / "pairs.json", {"pairs": PAIRS})) == PAIRS
    assert read_pairs(_write(tmp_path / "bare.json", PAIRS)) == PAIRS
    with pytest.raises(ZooError, match="no list of pairs"):
        read_pairs(_write(tmp_path / "bad.json", {"pairs": [{"suspect": "a"}]}))
    with pytest.raises(ZooError, match="cannot read zoo manifest"):
        read_pairs(tmp_path / "missing.json")


def test_rows_and_table_count_what_the_comparisons_said(tmp_path: Path) -> None:
    manifest = _write(tmp_path / "zoo.json", {"version": MANIFEST_VERSION, "models": [], "pairs": PAIRS})
    calls: list[tuple[int, int]] = []
    rows = run_pairs(manifest, _answer, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert [row["map_ok"] for row in rows] == [True, False, None, None]  # [0, 2] means {"0": 0, "1": 2}
    summary = summarise(rows, alpha=0.01)
    independent = summary["table"]["independent"]
    assert (independent["pairs"], independent["false_positives"], independent["negatives"]) == (2, 1, 2)
    assert independent["median_log10_p"] == pytest.approx(-1.75)
    assert independent["median_bytes_read"] == 3000
    assert summary["table"]["finetune"]["layer_map_ok"] == "1/1"
    assert [row["suspect"] for row in summary["false_positives"]] == ["c"]
    assert [row["suspect"] for row in summary["wrong_maps"]] == ["a.drop"]
    assert summary["missed"] == [] and summary["ok"] is False
    assert summary["expected_false_positives"] == pytest.approx(0.02)
