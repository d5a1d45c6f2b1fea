"""safetensors reader: bit-exact round trips against the safetensors library, rows, shards, FP8 scales."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from safetensors.torch import save_file as save_torch_file

from modeltrace.errors import CorruptFileError, FormatError, ResourceLimitError, TensorNotFoundError
from modeltrace.formats import open_model, open_weights
from modeltrace.formats.safetensors import SafetensorsReader


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "f32": rng.standard_normal((5, 3)).astype(np.float32),
        "f16": rng.standard_normal((4, 6)).astype(np.float16),
        "f64": rng.standard_normal((2,)).astype(np.float64),
        "i8": rng.integers(-128, 127, (3, 3)).astype(np.int8),
        "i64": rng.integers(-(2**40), 2**40, (7,)).astype(np.int64),
        "u8": rng.integers(0, 255, (2, 2, 2)).astype(np.uint8),
        "b": rng.integers(0, 2, (4,)).astype(bool),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def test_round_trip_every_numpy_dtype_is_bit_exact(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file(_tensors(), str(path), metadata={"format": "np"})
    with SafetensorsReader(path) as reader:
        assert reader.metadata == {"format": "np"}
        for name, expected in _tensors().items():
            got = reader.read(name)
            assert got.shape == expected.shape
            assert np.array_equal(got, expected.astype(got.dtype)), name
            assert reader.raw(name) == expected.tobytes()


def test_bf16_and_fp8_decode_like_torch(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(1)
    weights = {
        "bf16": torch.randn(8, 5, generator=generator).to(torch.bfloat16),
        "e4m3": torch.randn(6, 4, generator=generator).to(torch.float8_e4m3fn),
        "e5m2": torch.randn(6, 4, generator=generator).to(torch.float8_e5m2),
    }
    path = tmp_path / "m.safetensors"
    save_torch_file(weights, str(path))
    reader = SafetensorsReader(path)
    for name, tensor in weights.items():
        assert np.array_equal(reader.read(name), tensor.float().numpy()), name


def test_read_rows_reads_only_those_rows(tmp_path: Path) -> None:
    matrix = np.arange(1000 * 64, dtype=np.float32).reshape(1000, 64)
    path = tmp_path / "m.safetensors"
    save_file({"w": matrix}, str(path))
    reader = SafetensorsReader(path)
    before = reader.bytes_read
    rows = [999, 3, 4, 5, 500]
    got = reader.read_rows("w", rows)
    assert np.array_equal(got, matrix[rows])
    assert reader.bytes_read - before == len(rows) * 64 * 4
    with pytest.raises(TensorNotFoundError):
        reader.read_rows("w", [1000])


def test_fp8_block_scales_are_dequantised(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(2)
    weight = torch.randn(300, 260, generator=generator).to(torch.float8_e4m3fn)
    scale = torch.rand(3, 3, generator=generator) + 0.5  # 128x128 blocks tiling 300x260
    path = tmp_path / "m.safetensors"
    save_torch_file({"layer.weight": weight, "layer.weight_scale_inv": scale}, str(path))
    reader = SafetensorsReader(path)
    assert list(reader.tensors()) == ["layer.weight"]
    assert set(reader.stored_tensors()) == {"layer.weight", "layer.weight_scale_inv"}
    expanded = scale.repeat_interleave(128, 0)[:300].repeat_interleave(128, 1)[:, :260]
    expected = (weight.float() * expanded).numpy()
    assert np.array_equal(reader.read("layer.weight"), expected)
    assert np.array_equal(reader.read_rows("layer.weight", [299, 0, 130]), expected[[299, 0, 130]])


def test_sharded_checkpoint_through_index(tmp_path: Path) -> None:
    a, b = np.ones((2, 2), np.float32), np.zeros((3,), np.float32)
    save_file({"a": a}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"b": b}, str(tmp_path / "model-00002-of-00002.safetensors"))
    index = {
        "metadata": {"total_size": 28},
        "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"},
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    source = open_model(tmp_path)
    assert source.format == "safetensors"
    assert source.config == {"model_type": "llama"}
    assert source.weights is not None
    assert set(source.weights.tensors()) == {"a", "b"}
    assert np.array_equal(source.weights.read("b"), b)


def test_index_pointing_outside_the_folder_is_refused(tmp_path: Path) -> None:
    index = {"weight_map": {"a": "../../etc/passwd"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CorruptFileError, match="outside the model folder"):
        open_weights(tmp_path / "model.safetensors.index.json")


def _raw_file(path: Path, header: bytes, payload: bytes = b"", declared_length: int | None = None) -> Path:
    length = len(header) if declared_length is None else declared_length
    path.write_bytes(struct.pack("<Q", length) + header + payload)
    return path


@pytest.mark.parametrize(
    ("header", "payload", "declared", "error", "message"),
    [
        (b"{}", b"", 9 * 10**18, ResourceLimitError, "header length"),
        (b"{}", b"", 500, CorruptFileError, "exceeds file size"),
        (b"\xff\xfe{}", b"", None, CorruptFileError, "UTF-8"),
        (b"[" * 5000 + b"]" * 5000, b"", None, ResourceLimitError, "nests deeper"),
        (b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', b"", None, CorruptFileError,
         "outside the data buffer"),
        (b'{"a": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}}', b"\0" * 8, None, CorruptFileError,
         "unknown dtype"),
        (b'{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}', b"\0" * 8, None, CorruptFileError,
         "needs"),
        (b'{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 8]}}', b"\0" * 8, None, CorruptFileError,
         "invalid dimension"),
        (b'{"a": {"dtype": "U8", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 8]}}',
         b"\0" * 8, None, ResourceLimitError, "elements"),
        (b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},'
         b' "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}', b"\0" * 12, None,
         CorruptFileError, "overlap"),
    ],
)  # fmt: skip
def test_malformed_headers_give_specific_errors(
    tmp_path: Path, header: bytes, payload: bytes, declared: int | None, error: type, message: str
) -> None:
    path = _raw_file(tmp_path / "bad.safetensors", header, payload, declared)
    with pytest.raises(error, match=message) as info:
        SafetensorsReader(path)
    assert isinstance(info.value, FormatError)
    assert "bad.safetensors" in str(info.value)


def test_truncated_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"w": np.ones((100, 100), np.float32)}, str(path))
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=r"cut\.safetensors"):
        SafetensorsReader(tmp_path / "cut.safetensors")


def test_symlink_loop_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(FormatError):
        open_model(tmp_path / "a")


def test_int8_with_per_row_scale_is_dequantised(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    quantised = rng.integers(-127, 128, (6, 5)).astype(np.int8)
    scale = (rng.random((6, 1)) + 0.1).astype(np.float32)
    path = tmp_path / "m.safetensors"
    save_file({"proj.weight": quantised, "proj.weight_scale": scale}, str(path))
    reader = SafetensorsReader(path)
    assert list(reader.tensors()) == ["proj.weight"]
    expected = quantised.astype(np.float32) * scale
    assert np.array_equal(reader.read("proj.weight"), expected)
    assert np.array_equal(reader.read_rows("proj.weight", [5, 1]), expected[[5, 1]])
