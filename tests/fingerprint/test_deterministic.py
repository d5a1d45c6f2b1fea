"""The same model fingerprinted twice gives the same bytes (fixed zip timestamps, order, compression),
and fingerprints written the earlier way (``np.savez_compressed`` and time-stamped members) still load."""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from modeltrace import api
from modeltrace.fingerprint.model import load_fingerprint
from tests.lineage.synthetic import make_params, write_model


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("deterministic") / "model", make_params(5, layers=2))


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_fingerprinting_twice_gives_identical_bytes(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.fingerprint(model, tmp_path / "first.mtfp")
    later = time.time() + 3 * 3600  # zip stamps members with the time they are written
    monkeypatch.setattr(time, "time", lambda: later)
    api.fingerprint(model, tmp_path / "second.mtfp")
    assert (tmp_path / "first.mtfp").read_bytes() == (tmp_path / "second.mtfp").read_bytes()


def test_the_source_path_is_the_only_difference_between_copies(tmp_path: Path, model: Path) -> None:
    """Documented: the header records where the model was read, so a copy elsewhere gives other bytes,
    with the same content otherwise."""
    copy = shutil.copytree(model, tmp_path / "elsewhere" / "model")
    api.fingerprint(model, tmp_path / "here.mtfp")
    api.fingerprint(copy, tmp_path / "there.mtfp")
    here, there = _members(tmp_path / "here.mtfp"), _members(tmp_path / "there.mtfp")
    assert here["arrays.npz"] == there["arrays.npz"] and here["vocabulary.json"] == there["vocabulary.json"]
    headers = [json.loads(members["header.json"]) for members in (here, there)]
    assert [header["model"].pop("path") for header in headers] == [str(model), str(copy)]
    assert headers[0] == headers[1]


def test_a_fingerprint_written_the_earlier_way_still_loads(tmp_path: Path, model: Path) -> None:
    current = tmp_path / "current.mtfp"
    api.fingerprint(model, current)
    members = _members(current)
    with np.load(io.BytesIO(members["arrays.npz"]), allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # how Fingerprint.save wrote the arrays before
    earlier = tmp_path / "earlier.mtfp"
    with zipfile.ZipFile(earlier, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("header.json", members["header.json"])
        archive.writestr("vocabulary.json", members["vocabulary.json"])
        archive.writestr("arrays.npz", buffer.getvalue())
    old, new = load_fingerprint(earlier), load_fingerprint(current)
    assert old.header == new.header and old.anchors == new.anchors
    assert [block.digest for block in old.blocks] == [block.digest for block in new.blocks]
    for a, b in zip(old.blocks, new.blocks, strict=True):
        np.testing.assert_array_equal(a.up, b.up)
    np.testing.assert_array_equal(old.anchor_gram, new.anchor_gram)
