"""The registry records the parameter counts ``modeltrace inspect`` reports, whether it is given the
model or only its fingerprint (which carries the card's figures in its header), and for fingerprints
written before they did, counts their tensor inventory by the same rules."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from modeltrace import api
from modeltrace.cli import main
from modeltrace.fingerprint.model import load_fingerprint
from tests.lineage.synthetic import make_params, write_model

FIGURES = ("total_params", "active_params", "embedding_params", "head_params")


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--json"])
    captured = capsys.readouterr()
    assert (exit_info.value.code or 0) == 0, captured
    return json.loads(captured.out)


@pytest.fixture(scope="module")
def buffered_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Llama-shaped model saved with its rotary ``inv_freq`` buffers (as early Llama conversions
    were): bytes in the file, not parameters, so the plain tensor sum and the card disagree."""
    params = make_params(3, layers=2)
    inv_freq = np.linspace(1, 0.01, 6, dtype=np.float32)  # head_dim 12 / 2
    for layer in range(2):
        params[f"model.layers.{layer}.self_attn.rotary_emb.inv_freq"] = inv_freq
    return write_model(tmp_path_factory.mktemp("buffered") / "buffered", params)


def _without_card(source: Path, target: Path) -> Path:
    """The fingerprint as modeltrace wrote it before headers carried the card's figures."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = json.loads(members["header.json"])
    header.pop("card", None)
    members["header.json"] = json.dumps(header).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    target.write_bytes(buffer.getvalue())
    return target


def test_registry_show_and_inspect_agree_on_a_fingerprinted_model(
    tmp_path: Path, buffered_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = api.inspect(buffered_model)
    fingerprint = tmp_path / "buffered.mtfp"
    api.fingerprint(buffered_model, fingerprint)
    header = load_fingerprint(fingerprint).header
    assert header["parameters"] == card["total_params"] + 2 * 6  # the case this test is about
    db = ("--db", f"sqlite:///{tmp_path / 'registry.sqlite'}")
    old = _without_card(fingerprint, tmp_path / "old.mtfp")
    for name, path in (("model", buffered_model), ("fingerprint", fingerprint), ("old", old)):
        _json(capsys, "registry", "add", str(path), "--name", name, *db)
        shown = _json(capsys, "registry", "show", name, *db)["card"]
        assert {key: shown[key] for key in FIGURES} == {key: card[key] for key in FIGURES}, name
        assert shown["layers"] == card["layers"] == 2


def test_figures_an_upload_cannot_make_counts_are_dropped(tmp_path: Path, buffered_model: Path) -> None:
    from modeltrace.api._registry_intake import card_from_fingerprint

    api.fingerprint(buffered_model, tmp_path / "model.mtfp")
    fp = load_fingerprint(tmp_path / "model.mtfp")
    fp.header["card"] = {"total_params": "lots", "active_params": -5, "embedding_params": True, "layers": 2}
    card = card_from_fingerprint(fp)
    assert [card[key] for key in (*FIGURES, "layers")] == [None, None, None, None, 2]
    fp.header.pop("card")
    fp.header["inventory"] = [["model.embed_tokens.weight", [-400, 48], "F32"]]
    assert card_from_fingerprint(fp)["total_params"] == fp.header["parameters"]
