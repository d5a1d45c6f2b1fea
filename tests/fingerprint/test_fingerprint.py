"""Fingerprints: deterministic sampling, role assignment without names, safe file format."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from modeltrace.errors import FingerprintError
from modeltrace.fingerprint.build import build_fingerprint
from modeltrace.fingerprint.model import is_fingerprint_file, load_fingerprint
from modeltrace.fingerprint.roles import assign_roles
from modeltrace.fingerprint.sampling import anchor_tokens, seeded_rows
from modeltrace.formats.detect import open_model
from modeltrace.types import TensorInfo
from tests.lineage.synthetic import make_params


def _infos(shapes: dict[str, tuple[int, ...]]) -> dict[str, TensorInfo]:
    return {name: TensorInfo(name, shape, "F32", 0, "x") for name, shape in shapes.items()}


def test_seeded_rows_depend_only_on_seed_and_count() -> None:
    assert np.array_equal(seeded_rows(1000, 16), seeded_rows(1000, 16))
    assert not np.array_equal(seeded_rows(1000, 16), seeded_rows(1001, 16))
    assert seeded_rows(10, 16).tolist() == list(range(10))


def test_anchor_tokens_follow_strings_not_ids() -> None:
    vocab = [f"tok{i}" for i in range(500)]
    shuffled = list(reversed(vocab))
    first = {token for _, token in anchor_tokens(vocab, 500, 32, 0, seed=1)}
    second = {token for _, token in anchor_tokens(shuffled, 500, 32, 0, seed=1)}
    assert first == second and len(first) == 32


@pytest.mark.parametrize(
    ("shapes", "fmt", "expected"),
    [
        (  # GPT-2: Conv1D stores [in, out]
            {"transformer.wte.weight": (100, 8), "transformer.h.0.mlp.c_fc.weight": (8, 32),
             "transformer.h.0.mlp.c_proj.weight": (32, 8), "transformer.h.0.ln_2.weight": (8,)},
            "safetensors", [(0, "transformer.h.0.mlp.c_fc.weight", None, True)],
        ),
        (  # BERT
            {"embeddings.word_embeddings.weight": (100, 8),
             "encoder.layer.0.intermediate.dense.weight": (32, 8),
             "encoder.layer.0.output.dense.weight": (8, 32)},
            "safetensors", [(0, "encoder.layer.0.intermediate.dense.weight", None, False)],
        ),
        (  # GGUF names, numpy shape order
            {"token_embd.weight": (100, 8), "blk.0.ffn_gate.weight": (32, 8), "blk.0.ffn_up.weight": (32, 8),
             "blk.0.ffn_down.weight": (8, 32)},
            "gguf", [(0, "blk.0.ffn_up.weight", "blk.0.ffn_gate.weight", False)],
        ),
        (  # exported ONNX: anonymous MatMul initialisers stored [in, out], roles from order and shape
            {"embeddings.word_embeddings.weight": (100, 8), "val_1": (8, 8), "val_2": (8, 8),
             "val_3": (8, 32), "val_4": (32, 8), "val_5": (8, 8), "val_6": (8, 32), "val_7": (32, 8)},
            "onnx", [(0, "val_3", None, True), (1, "val_6", None, True)],
        ),
    ],
)  # fmt: skip
def test_roles_from_names_order_and_shapes(shapes: dict, fmt: str, expected: list) -> None:
    roles = assign_roles(_infos(shapes), vocab_size=100, hidden_size=None, format=fmt)
    got = [(b.layer, b.up, b.gate, b.transposed) for b in roles.blocks]
    assert got == expected
    assert all(b.units == 32 for b in roles.blocks)


def test_round_trip_and_byte_budget(model_factory, tmp_path: Path) -> None:
    folder = model_factory(make_params(1, inner=300))
    with open_model(folder) as source:
        built = build_fingerprint(source)
    assert all(len(block.unit_rows) == 128 for block in built.blocks)
    assert built.bytes_read < 0.5 * built.header["total_bytes"]
    path = tmp_path / "fp.mtfp"
    built.save(path)
    assert is_fingerprint_file(path) and not is_fingerprint_file(folder / "config.json")
    loaded = load_fingerprint(path)
    assert loaded.anchors == built.anchors and loaded.vocabulary == built.vocabulary
    for a, b in zip(loaded.blocks, built.blocks, strict=True):
        assert a.digest == b.digest and np.allclose(a.up, b.up, rtol=1e-2, atol=1e-3)


def test_object_arrays_are_refused_never_unpickled(model_factory, tmp_path: Path) -> None:
    folder = model_factory(make_params(1))
    with open_model(folder) as source:
        built = build_fingerprint(source)
    good = tmp_path / "good.mtfp"
    built.save(good)
    bad = tmp_path / "bad.mtfp"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        dst.writestr("header.json", src.read("header.json"))
        dst.writestr("vocabulary.json", src.read("vocabulary.json"))
        buffer = io.BytesIO()
        np.savez(buffer, anchor_gram=np.array([object()], dtype=object))
        dst.writestr("arrays.npz", buffer.getvalue())
    with pytest.raises(FingerprintError):
        load_fingerprint(bad)


def test_unknown_version_is_refused(model_factory, tmp_path: Path) -> None:
    path = tmp_path / "v.mtfp"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "header.json", json.dumps({"format": "modeltrace-fingerprint", "format_version": 99})
        )
        archive.writestr("vocabulary.json", "null")
        archive.writestr("arrays.npz", b"")
    with pytest.raises(FingerprintError, match="version 99"):
        load_fingerprint(path)
