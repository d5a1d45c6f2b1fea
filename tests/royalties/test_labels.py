"""Royalty attribution from labels exactly as ``modeltrace label create`` writes them."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modeltrace.cli import main
from modeltrace.royalties import attribute


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.fixture
def merged_model(tmp_path: Path) -> Path:
    folder = tmp_path / "merged"
    folder.mkdir()
    save_file({"w": np.ones((4, 4), dtype=np.float32)}, str(folder / "model.safetensors"))
    return folder


def test_merge_weights_written_by_label_create_split_the_bases_share(
    merged_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "label.json"
    code, _, err = run(
        ["label", "create", str(merged_model), "-o", str(output), "--no-prefill", "--name", "acme/merged",
         "--base", "org/a", "--base", "org/b", "--relation", "merge",
         "--base-weight", "org/a=0.6", "--base-weight", "org/b=0.4",
         "--compute", "pretraining=3e24", "--compute", "merge=1e24@Acme"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    label = json.loads(output.read_text())
    assert [(base["id"], base["weight"]) for base in label["base_models"]] == [("org/a", 0.6), ("org/b", 0.4)]
    shares = attribute("acme/merged", {"acme/merged": label})
    assert shares.share_of("org/a") == Fraction(9, 20)
    assert shares.share_of("org/b") == Fraction(3, 10)
    assert shares.share_of("acme/merged") == Fraction(1, 4)


def test_a_weight_for_a_base_not_given_is_a_usage_error(
    merged_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        ["label", "create", str(merged_model), "-o", str(tmp_path / "l.json"), "--no-prefill",
         "--base", "org/a", "--base-weight", "org/c=1"],
        capsys,
    )  # fmt: skip
    assert code == 2 and "org/c" in err
    code, _, err = run(
        ["label", "create", str(merged_model), "-o", str(tmp_path / "l.json"), "--no-prefill",
         "--base", "org/a", "--base-weight", "org/a=-1"],
        capsys,
    )  # fmt: skip
    assert code == 2 and "WEIGHT > 0" in err
