"""The lineage engine on the quick zoo (docs/zoo.md): the issue's done-when, pair by pair.

Every related pair detected at alpha = 0.01 with the right layer map for layer transforms, no false
positive among the independent pairs (models trained on the same data from different seeds, and the
distilled student), and ``distilled`` reported unrelated.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrace.api import run_zoo_pairs

ALPHA = 0.01


@pytest.fixture(scope="module")
def rows(quick_zoo: Path) -> list[dict]:
    return run_zoo_pairs(quick_zoo / "zoo.json", alpha=ALPHA)


def _label(row: dict) -> str:
    return (
        f"{row['relation']}: {row['suspect']} vs {row['base']} -> {row['verdict']} (log10 p {row['log10_p']})"
    )


def test_every_related_pair_is_detected_with_the_right_layer_map(rows: list[dict]) -> None:
    related = [row for row in rows if row["expected"] in ("related", "same-weights")]
    assert related
    assert [_label(r) for r in related if not r["detected"]] == []
    assert [_label(r) for r in related if r["map_ok"] is False] == []


def test_no_false_positive_among_independent_pairs(rows: list[dict]) -> None:
    independent = [row for row in rows if row["expected"] == "unrelated"]
    assert len(independent) >= 50
    assert [_label(r) for r in independent if r["detected"]] == []


def test_distilled_student_is_unrelated(rows: list[dict], quick_zoo: Path) -> None:
    distilled = [row for row in rows if row["relation"] == "distilled"]
    assert distilled and all(row["verdict"] == "unrelated" for row in distilled)
    assert json.loads((quick_zoo / "zoo.json").read_text())["pairs"]


def test_zoo_accuracy_command_passes_on_the_quick_zoo(
    quick_zoo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modeltrace.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["zoo", "accuracy", str(quick_zoo), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert exit_info.value.code == 0
    assert summary["ok"] is True
    assert summary["table"]["independent"]["false_positives"] == 0
