"""``graph`` and ``lineage`` print declared-vs-detected disagreements the same way (one helper,
cli/_disagreements.py): a red heading, then ``  MODEL: MESSAGE`` per item, or a one-line all-clear.

The expected lines are the output both commands printed before they shared the helper.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modeltrace.cli import main
from tests.lineage.synthetic import fine_tune, make_params, write_model


def _human(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    assert (exit_info.value.code or 0) == 0, captured
    return captured.out.splitlines()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("disagreement-models")
    base = make_params(1)
    child = fine_tune(base, np.random.default_rng(11))
    return {"base": write_model(folder / "base", base), "kid": write_model(folder / "kid", child)}


def test_an_undeclared_base_reads_the_same_in_graph_and_lineage(
    tmp_path: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db = ("--db", f"sqlite:///{tmp_path / 'registry.sqlite'}")
    _human(capsys, "registry", "add", str(models["base"]), *db)
    assert _human(capsys, "graph", *db)[-1] == "no disagreements between declared and detected lineage"
    assert _human(capsys, "lineage", "base", *db)[-1] == "no conflicts between declared and detected lineage"
    _human(capsys, "registry", "add", str(models["kid"]), "--name", "kid", *db)
    assert _human(capsys, "graph", *db)[-2:] == [
        "disagreements with the declarations",
        "  kid: undeclared base base",
    ]
    assert _human(capsys, "lineage", "kid", *db)[-2:] == ["conflicts", "  kid: undeclared base base"]
