"""What a fingerprint costs over HTTP: each sampled MLP projection is one range of 128 contiguous rows
on a 128-row quantisation-block boundary (plus one range of its scales), so the request count is
bounded by the model's shape, and the fingerprint equals the one built from the local files."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from modeltrace import api
from modeltrace.fingerprint.model import load_fingerprint
from modeltrace.formats.safetensors import SafetensorsReader
from tests.formats.range_server import serve_folder
from tests.lineage.quant_encoders import ct_pack, dense, e4m3_codes, write_safetensors
from tests.lineage.synthetic import make_params, write_model

INNER, HIDDEN, LAYERS, BLOCK = 512, 128, 2, 128


def _block_fp8(weight: np.ndarray) -> dict[str, tuple[str, np.ndarray]]:
    """DeepSeek-V3 / Kimi K2 block FP8: E4M3 codes and a float32 ``weight_scale_inv`` per 128 x 128 block."""
    rows, cols = weight.shape
    tiles = weight.reshape(rows // BLOCK, BLOCK, cols // BLOCK, BLOCK)
    scale = np.maximum(np.abs(tiles).max(axis=(1, 3)) / 448, 1e-12).astype(np.float32)
    per_element = np.repeat(np.repeat(scale, BLOCK, axis=0), BLOCK, axis=1)
    return {"weight": ("F8_E4M3", e4m3_codes(weight / per_element)), "weight_scale_inv": dense(scale)}


def _quantised_copy(base: Path, folder: Path, layout: str) -> Path:
    """``base`` with every MLP projection stored as block FP8 (``fp8``) or compressed-tensors INT4 in
    groups of 32 (``int4``, as Kimi K2.5 ships its routed experts); everything else float32."""
    folder.mkdir(parents=True)
    stored: dict[str, tuple[str, np.ndarray]] = {}
    with SafetensorsReader(base / "model.safetensors") as reader:
        for name in reader.tensors():
            values = np.asarray(reader.read(name), dtype=np.float32)
            if ".mlp." in name and name.endswith("_proj.weight"):
                parts = _block_fp8(values) if layout == "fp8" else ct_pack(values, bits=4, group=32)
                for suffix, tensor in parts.items():
                    stored[name[: -len("weight")] + suffix] = tensor
            else:
                stored[name] = dense(values)
    write_safetensors(folder / "model.safetensors", stored)
    config = json.loads((base / "config.json").read_text())
    config["quantization_config"] = (
        {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [BLOCK, BLOCK]}
        if layout == "fp8"
        else {
            "quant_method": "compressed-tensors",
            "format": "pack-quantized",
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
                "num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 32}}},
        }
    )  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text((base / "tokenizer.json").read_text())
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("served")
    params = make_params(5, hidden=HIDDEN, inner=INNER, layers=LAYERS)
    base = write_model(root / "f32", params)
    return {
        "f32": base,
        "fp8": _quantised_copy(base, root / "fp8", "fp8"),
        "int4": _quantised_copy(base, root / "int4", "int4"),
    }


def _requests_by_tensor(folder: Path, requests: list[str]) -> dict[str, list[tuple[int, int]]]:
    """Each ranged request of the weight file as (tensor name, byte range within that tensor)."""
    with SafetensorsReader(folder / "model.safetensors") as reader:
        stored = sorted(reader.stored_tensors().values(), key=lambda info: info.offset)
    by_tensor: dict[str, list[tuple[int, int]]] = {}
    for line in requests:
        path, _, header = line.partition(" ")
        if not path.endswith("model.safetensors") or not header:
            continue
        first, _, last = header.removeprefix("bytes=").partition("-")
        start, stop = int(first), int(last) + 1
        owner = [info for info in stored if info.offset <= start < info.offset + max(info.nbytes, 1)]
        name = owner[0].name if owner else "<header>"
        by_tensor.setdefault(name, []).append((start - (owner[0].offset if owner else 0), stop - start))
    return by_tensor


@pytest.mark.parametrize("layout", ["f32", "fp8", "int4"])
def test_each_sampled_projection_is_one_aligned_run_of_rows(
    models: dict[str, Path], layout: str, tmp_path: Path
) -> None:
    folder = models[layout]
    api.fingerprint(folder, tmp_path / "local.mtfp")
    with serve_folder(folder.parent) as (url, faults):
        summary = api.fingerprint(f"{url}/{folder.name}", tmp_path / "remote.mtfp")
    requests = _requests_by_tensor(folder, faults.requests)
    with SafetensorsReader(folder / "model.safetensors") as reader:
        stored = reader.stored_tensors()
    codes_suffix = {"f32": "weight", "fp8": "weight", "int4": "weight_packed"}[layout]
    for layer in range(LAYERS):
        for role in ("gate_proj", "up_proj"):
            name = f"model.layers.{layer}.mlp.{role}.{codes_suffix}"
            row_bytes = stored[name].nbytes // INNER
            assert len(requests[name]) == 1, (name, requests[name])
            offset, length = requests[name][0]
            assert length == 128 * row_bytes  # one contiguous run of 128 units...
            assert offset % (BLOCK * row_bytes) == 0  # ...starting on a quantisation-block boundary
            scale = {"fp8": ".weight_scale_inv", "int4": ".weight_scale"}.get(layout)
            if scale is not None:
                assert len(requests[name.rsplit(".", 1)[0] + scale]) == 1
        assert f"model.layers.{layer}.mlp.down_proj.{codes_suffix}" not in requests
        assert f"model.layers.{layer}.mlp.gate_proj.weight_shape" not in requests  # width from the config
    # Bounded by the shape: the small files, one probe, the anchors' embedding rows, and a few
    # requests per layer (two projections and their scales, value rows, norms), whatever the width.
    counts = Counter(name for name, ranges in requests.items() for _ in ranges)
    per_layer = max(
        sum(n for name, n in counts.items() if f"layers.{layer}." in name) for layer in range(LAYERS)
    )
    assert per_layer <= 8, counts
    assert summary["transfer"]["requests"] == len(faults.requests)
    _assert_same_fingerprint(tmp_path / "local.mtfp", tmp_path / "remote.mtfp")


def _assert_same_fingerprint(a: Path, b: Path) -> None:
    left, right = load_fingerprint(a), load_fingerprint(b)
    assert left.anchors == right.anchors
    np.testing.assert_array_equal(left.anchor_gram, right.anchor_gram)
    assert len(left.blocks) == len(right.blocks) and len(left.attention) == len(right.attention)
    for x, y in zip(left.blocks, right.blocks, strict=True):
        assert x.digest == y.digest
        np.testing.assert_array_equal(x.unit_rows, y.unit_rows)
        np.testing.assert_array_equal(x.up, y.up)
        np.testing.assert_array_equal(x.gate, y.gate)
    for x, y in zip(left.attention, right.attention, strict=True):
        assert x.digest == y.digest
        np.testing.assert_array_equal(x.value, y.value)
    assert left.residual is not None and right.residual is not None
    np.testing.assert_array_equal(left.residual.columns, right.residual.columns)


def test_quantised_copies_keep_the_same_units_as_the_float_model(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """The run depends on the seed and the unit count only, so a quantised release and its float
    original sample the same units (the fixed-point test needs them) and come out related."""
    fingerprints = {}
    for layout, folder in models.items():
        api.fingerprint(folder, tmp_path / f"{layout}.mtfp")
        fingerprints[layout] = load_fingerprint(tmp_path / f"{layout}.mtfp")
    rows = {layout: [b.unit_rows.tolist() for b in fp.blocks] for layout, fp in fingerprints.items()}
    assert rows["f32"] == rows["fp8"] == rows["int4"]
    assert all(r == list(range(r[0], r[0] + 128)) and r[0] % BLOCK == 0 for r in rows["f32"])
    for layout in ("fp8", "int4"):
        result = api.compare(tmp_path / f"{layout}.mtfp", tmp_path / "f32.mtfp")
        assert result.verdict == "related", result.verdict
        assert result.exact is not None and result.exact["log10_p"] < -100  # same units, fixed points


def test_a_nested_text_config_settles_the_int4_width_without_reading_weight_shape(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """Kimi K2.5 declares its INT4 experts in ``text_config.quantization_config``; reading one
    ``weight_shape`` per expert projection would cost 69 120 requests there."""
    from modeltrace.formats.remote_model import open_remote_model

    folder = tmp_path / "nested"
    shutil.copytree(models["int4"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"] = {"quantization_config": config.pop("quantization_config")}
    (folder / "config.json").write_text(json.dumps(config))
    with serve_folder(tmp_path) as (url, faults):
        source = open_remote_model(f"{url}/nested")
        try:
            shape = source.weights.tensors()["model.layers.0.mlp.up_proj.weight"].shape
        finally:
            source.close()
    assert shape == (INNER, HIDDEN)
    assert not [
        name for name in _requests_by_tensor(folder, faults.requests) if name.endswith("weight_shape")
    ]
