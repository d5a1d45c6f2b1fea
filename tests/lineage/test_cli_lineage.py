"""The lineage commands through the CLI: JSON interface keys other tools rely on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modeltrace.cli import main
from tests.lineage.synthetic import fine_tune, make_params


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code in (0, None)
    return json.loads(capsys.readouterr().out)


def test_fingerprint_compare_identify(
    model_factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = model_factory(make_params(1))
    child = model_factory(fine_tune(make_params(1), np.random.default_rng(0)))
    stranger = model_factory(make_params(7))
    summary = _run(capsys, "fingerprint", str(base), "-o", str(tmp_path / "base.mtfp"), "--json")
    assert summary["file_bytes"] > 0 and summary["mlp_blocks"] == summary["attention_layers"] == 4
    report = tmp_path / "report.html"
    result = _run(
        capsys, "compare", str(child), str(tmp_path / "base.mtfp"), "--json", "--report", str(report)
    )
    for key in ("verdict", "p_value", "log10_p", "relation", "layer_map", "bytes_read", "p_value_kind"):
        assert key in result
    assert result["verdict"] == "related"
    assert "<svg" in report.read_text() and "Null distribution" in report.read_text()
    assert report.read_text().count("this pair ") == 2  # both sign tests ran and are drawn with their nulls
    candidates = tmp_path / "candidates"
    candidates.mkdir()
    (candidates / "base.mtfp").write_bytes((tmp_path / "base.mtfp").read_bytes())
    stranger.rename(candidates / "stranger")
    ranking = _run(capsys, "identify", str(child), "--against", str(candidates), "--json")
    first = ranking["candidates"][0]
    assert first["candidate"].endswith("base.mtfp") and first["verdict"] == "related"
    assert {"candidate", "verdict", "p_value"} <= set(first)
    assert ranking["candidates"][1]["verdict"] == "unrelated"
    assert ranking["closest_ancestor"].endswith("base.mtfp")
    with pytest.raises(SystemExit):
        main(["identify", str(child), "--against", str(candidates)])
    table = capsys.readouterr().out
    assert "closest ancestor: base.mtfp" in table and str(candidates) not in table.split("Candidate")[1]


def test_identify_detects_candidates_by_content_and_lists_what_it_skipped(
    model_factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Candidate files named without a known extension are read by content; what is no candidate is
    listed with the reason, never dropped silently."""
    base = model_factory(make_params(1))
    child = model_factory(fine_tune(make_params(1), np.random.default_rng(0)))
    candidates = tmp_path / "candidates"
    candidates.mkdir()
    (candidates / "base-weights").write_bytes((base / "model.safetensors").read_bytes())  # no extension
    (candidates / "NOTES").write_text("candidate list for the audit\n")
    (candidates / "settings.json").write_text("{}")
    ranking = _run(capsys, "identify", str(child), "--against", str(candidates), "--json")
    assert [row["candidate"] for row in ranking["candidates"]] == [str(candidates / "base-weights")]
    assert ranking["candidates"][0]["verdict"] == "related"
    skipped = {Path(item["path"]).name: item["reason"] for item in ranking["skipped"]}
    assert set(skipped) == {"NOTES", "settings.json"}
    assert "not a recognised model file" in skipped["NOTES"] and "without weights" in skipped["settings.json"]
    with pytest.raises(SystemExit):
        main(["identify", str(child), "--against", str(candidates)])
    assert "skipped NOTES: not a recognised model file" in capsys.readouterr().out
