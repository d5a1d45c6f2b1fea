"""Human output keeps every name whole: in a pipe or file, and in a terminal narrower than a table.

Each command runs through the real CLI twice: once into a pipe (pytest's capture is not a
terminal), once as a 60-column terminal. The names a reader looks for (licence ids, tokenizer
names, zoo transforms, architecture names) come from the command's own --json output or from the
zoo manifest, and each must appear unbroken in the human output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from modeltrace import api
from modeltrace.cli import main
from modeltrace.cli._app import console
from modeltrace.cli._zoo_accuracy import print_accuracy

NARROW = 60
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(params=["pipe", "narrow-terminal"])
def layout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make the CLI's console a pipe or a 60-column terminal for one test."""
    # Rich's console keeps an explicit width in _width (None: ask the terminal); undo restores it.
    monkeypatch.setattr(console, "_width", NARROW)
    if request.param == "narrow-terminal":
        monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich treats stdout as a terminal
    else:
        monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert console.width == NARROW and console.is_terminal == (request.param == "narrow-terminal")
    return request.param


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code in (0, None)
    return _ANSI.sub("", capsys.readouterr().out)


def _assert_whole(names: set[str], out: str, layout: str) -> None:
    broken = sorted(name for name in names if name not in out)
    assert not broken, f"{layout}: names broken or missing: {broken}\n{out}"
    if layout == "pipe":  # a file has no width: nothing is wrapped, rows are whole lines
        assert all(any(name in line for line in out.splitlines()) for name in names)


def test_license_list_keeps_ids_whole(layout: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = json.loads(_run(["license", "list", "--json"], capsys))
    out = _run(["license", "list"], capsys)
    _assert_whole({row["license"] for row in rows} | {row["id"] for row in rows}, out, layout)


def test_tokenizers_list_keeps_names_whole(layout: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = json.loads(_run(["tokenizers", "list", "--json"], capsys))
    out = _run(["tokenizers", "list"], capsys)
    _assert_whole({row["name"] for row in rows} | {row["origin"] for row in rows}, out, layout)


def test_inspect_keeps_architecture_names_whole(
    layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for model in api.demo_zoo_members(api.build_demo_zoo(tmp_path)):
        card = json.loads(_run(["inspect", str(model), "--json"], capsys))
        out = _run(["inspect", str(model)], capsys)
        _assert_whole({card["format"], card["architecture"] or "unknown"}, out, layout)


def test_zoo_accuracy_table_keeps_transform_names_whole(
    layout: str, quick_zoo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The layout is under test, not the statistics: the rows carry the zoo's real transform names.
    relations = {pair["relation"] for pair in api.load_zoo_manifest(quick_zoo)["pairs"]}
    row = {
        "pairs": 6, "detected": 6, "positives": 6, "false_positives": 0, "negatives": 6,
        "median_log10_p": -12.3, "layer_map_ok": "6/6", "median_bytes_read": 123_456,
    }  # fmt: skip
    summary = {
        "table": dict.fromkeys(sorted(relations), row),
        "missed": [],
        "false_positives": [],
        "wrong_maps": [],
        "expected_false_positives": 0.4,
        "ok": True,
    }
    print_accuracy(summary, alpha=0.01)
    out = _ANSI.sub("", capsys.readouterr().out)
    assert any(len(name) > 16 for name in relations)  # long enough to have been broken before
    _assert_whole(relations, out, layout)
