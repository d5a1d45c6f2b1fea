"""The fingerprint's row choices are contiguous runs fixed by the seed and the shape alone."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from modeltrace.fingerprint.build import build_fingerprint, mla_value_rows, value_rows
from modeltrace.fingerprint.model import load_fingerprint
from modeltrace.fingerprint.sampling import RUN_ALIGNMENT, head_band, head_runs, seeded_rows, unit_run
from modeltrace.formats.detect import open_model
from modeltrace.lineage.compare import compare_fingerprints
from tests.lineage.synthetic import make_params


@pytest.mark.parametrize("count", [256, 2048, 18432])
def test_a_unit_run_is_contiguous_and_starts_on_a_quantisation_block(count: int) -> None:
    starts = set()
    for seed in range(40):
        rows = unit_run(count, 128, seed)
        assert rows.tolist() == list(range(int(rows[0]), int(rows[0]) + 128))
        assert rows[0] % RUN_ALIGNMENT == 0 and rows[-1] < count
        starts.add(int(rows[0]))
    assert len(starts) > 1  # the seed moves the run among the blocks


def test_a_unit_run_depends_on_the_seed_and_the_count_only() -> None:
    assert np.array_equal(unit_run(2048, 128, 7), unit_run(2048, 128, 7))
    assert unit_run(96, 128, 7).tolist() == list(range(96))  # all units of a small block
    odd = unit_run(192, 128, 7)  # not whole blocks: any start that leaves room
    assert odd.tolist() == list(range(int(odd[0]), int(odd[0]) + 128)) and odd[-1] < 192


def test_value_rows_are_one_run_per_head_and_mla_rows_one_band_of_heads() -> None:
    per_head = head_runs(8, 128, 128, seed=3)
    assert per_head.reshape(8, 16).tolist() == [
        list(range(h * 128 + int(per_head[0]), h * 128 + int(per_head[0]) + 16)) for h in range(8)
    ]
    assert np.array_equal(value_rows(1024, 128, (8, 128), 3), per_head)
    band = head_band(64, 128, 128, seed=3)
    assert band.tolist() == list(range(int(band[0]), int(band[0]) + 128)) and band[0] % 128 == 0
    assert np.array_equal(mla_value_rows(64 * 128, 128, (64, 128), 3), band)
    unknown = value_rows(1024, 128, None, 3)  # no head layout: one longer run
    assert unknown.tolist() == list(range(int(unknown[0]), int(unknown[0]) + 512))


def test_format_4_is_written_and_a_format_3_file_still_loads_and_compares(
    model_factory, tmp_path: Path
) -> None:
    """A version 3 fingerprint kept scattered units: it loads, and against a version 4 one every test
    but the fixed-point test (which needs the same units on both sides) still runs."""
    with open_model(model_factory(make_params(1, inner=256))) as source:
        built = build_fingerprint(source)
    current, old = tmp_path / "v4.mtfp", tmp_path / "v3.mtfp"
    built.save(current)
    scattered = seeded_rows(256, 128)  # what version 3 kept
    with zipfile.ZipFile(current) as src, zipfile.ZipFile(old, "w") as dst:
        header = json.loads(src.read("header.json"))
        assert header["format_version"] == 4
        header["format_version"] = 3
        with np.load(io.BytesIO(src.read("arrays.npz"))) as arrays:
            rewritten = {key: arrays[key] for key in arrays.files}
        for index in range(len(header["blocks"])):
            rewritten[f"b{index}.rows"] = scattered
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **rewritten)
        dst.writestr("header.json", json.dumps(header))
        dst.writestr("vocabulary.json", src.read("vocabulary.json"))
        dst.writestr("arrays.npz", buffer.getvalue())
    loaded = load_fingerprint(old)
    assert (
        len(loaded.blocks) == len(built.blocks) and loaded.blocks[0].unit_rows.tolist() == scattered.tolist()
    )
    result = compare_fingerprints(loaded, load_fingerprint(current))
    assert result.exact is None and "fixed-points" not in result.paths_tried
    assert result.verdict in ("related", "same-weights") and result.paths_tried
