"""Known-answer vectors worked out by hand from each quantised format's definition (docs/formats.md,
"Quantised weights"), encode-then-read round trips of the spec encoders, and malformed parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tests.lineage.quant_encoders as enc
from modeltrace.errors import FormatError
from modeltrace.formats.detect import open_model
from modeltrace.formats.safetensors import SafetensorsReader


def _read(tmp_path: Path, tensors: enc.Stored, name: str = "x.weight") -> np.ndarray:
    enc.write_safetensors(tmp_path / "m.safetensors", tensors)
    with SafetensorsReader(tmp_path / "m.safetensors") as reader:
        assert list(reader.tensors()) == [name]
        return np.asarray(reader.read(name))


def _words(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint32).view(np.int32)


def test_compressed_tensors_int4_values_sit_low_nibble_first_with_offset_8(tmp_path: Path) -> None:
    values = _read(tmp_path, {
        "x.weight_packed": ("I32", _words(0x76543210, 0xFEDCBA98).reshape(1, 2)),
        "x.weight_shape": ("I64", np.array([1, 16], dtype=np.int64)),
        "x.weight_scale": ("F32", np.array([[0.5]], dtype=np.float32)),
    })  # fmt: skip
    np.testing.assert_array_equal(values, (np.arange(16) - 8).reshape(1, 16) * 0.5)


def test_compressed_tensors_int3_values_straddle_words(tmp_path: Path) -> None:
    """Dense packing: value i at bits 3i.. of the row's stream, so value 10 spans words 0 and 1."""
    codes = np.arange(32) % 8
    values = _read(tmp_path, {
        "x.weight_packed": ("I32", enc.pack_bitstream(codes.reshape(1, 32), 3)),
        "x.weight_shape": ("I64", np.array([1, 32], dtype=np.int64)),
        "x.weight_scale": ("F32", np.array([[1.0]], dtype=np.float32)),
    })  # fmt: skip
    np.testing.assert_array_equal(values[0], codes - 4)
    word0 = enc.pack_bitstream(np.array([[7] * 11]), 3).view(np.uint32)[0]
    assert word0[0] == 0xFFFFFFFF and word0[1] == 0x1  # 33 bits: 32 in word 0, the 33rd in word 1


def test_gptq_classic_zeros_are_stored_minus_one_and_g_idx_picks_the_group(tmp_path: Path) -> None:
    tensors = {
        "x.qweight": ("I32", _words(0x76543210).reshape(1, 1)),  # input i has code i
        "x.qzeros": ("I32", _words(0x7, 0x7).reshape(2, 1)),  # zero 8 in both groups
        "x.scales": ("F16", np.array([[1.0], [2.0]], dtype=np.float16)),
        "x.g_idx": ("I32", np.array([1, 0, 1, 0, 1, 0, 1, 0], dtype=np.int32)),
    }
    values = _read(tmp_path, tensors)
    np.testing.assert_array_equal(values, [[-16.0, -7.0, -12.0, -5.0, -8.0, -3.0, -4.0, -1.0]])


def test_gptq_v2_checkpoint_format_from_config_stores_zeros_as_they_are(tmp_path: Path) -> None:
    tensors = {
        "x.qweight": ("I32", _words(0x76543210).reshape(1, 1)),
        "x.qzeros": ("I32", _words(0x8).reshape(1, 1)),
        "x.scales": ("F16", np.array([[0.25]], dtype=np.float16)),
    }
    enc.write_safetensors(tmp_path / "model.safetensors", tensors)
    config = {"quantization_config": {"quant_method": "gptq", "bits": 4, "checkpoint_format": "gptq_v2"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with open_model(tmp_path) as source:
        assert source.weights is not None
        np.testing.assert_array_equal(
            source.weights.read("x.weight"), (np.arange(8) - 8).reshape(1, 8) * 0.25
        )


def test_awq_nibbles_hold_columns_in_its_own_order(tmp_path: Path) -> None:
    values = _read(tmp_path, {
        "x.qweight": ("I32", _words(0x75316420).reshape(1, 1)),  # nibble k holds column (0 2 4 6 1 3 5 7)[k]
        "x.qzeros": ("I32", _words(0).reshape(1, 1)),
        "x.scales": ("F16", np.ones((1, 8), dtype=np.float16)),
    })  # fmt: skip
    np.testing.assert_array_equal(values[:, 0], np.arange(8))


def test_bitsandbytes_4bit_high_nibble_first_times_block_absmax(tmp_path: Path) -> None:
    state = {"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [1, 4]}
    values = _read(tmp_path, {
        "x.weight": ("U8", np.array([[0x12], [0x3F]], dtype=np.uint8)),
        "x.weight.absmax": ("F32", np.array([2.0], dtype=np.float32)),
        "x.weight.quant_map": ("F32", np.arange(16, dtype=np.float32) / 10),
        "x.weight.quant_state.bitsandbytes__nf4": ("U8", np.frombuffer(json.dumps(state).encode(), np.uint8)),
    })  # fmt: skip
    np.testing.assert_allclose(values, [[0.2, 0.4, 0.6, 3.0]], rtol=1e-6)


def test_bitsandbytes_int8_is_code_times_scb_over_127(tmp_path: Path) -> None:
    values = _read(tmp_path, {"x.weight": ("I8", np.array([[127, -64]], dtype=np.int8)),
                              "x.SCB": ("F32", np.array([2.0], dtype=np.float32))})  # fmt: skip
    np.testing.assert_allclose(values, [[2.0, -128 / 127]], rtol=1e-6)


def test_gpt_oss_mxfp4_low_nibble_first_times_e8m0(tmp_path: Path) -> None:
    blocks = np.zeros((1, 1, 1, 16), dtype=np.uint8)
    blocks[0, 0, 0, 0] = 0x21  # codes 1 (0.5) then 2 (1.0)
    blocks[0, 0, 0, 1] = 0xF9  # codes 9 (-0.5) then 15 (-6.0)
    values = _read(
        tmp_path, {"x_blocks": ("U8", blocks), "x_scales": ("U8", np.array([[[128]]], np.uint8))}, "x"
    )
    assert values.shape == (1, 1, 32)
    np.testing.assert_array_equal(values[0, 0, :4], [1.0, 2.0, -1.0, -12.0])


def test_nvfp4_divides_the_fp8_group_scale_by_the_global_scale(tmp_path: Path) -> None:
    scale_codes = np.full((1, 1), 0x38, dtype=np.uint8)  # E4M3 0x38 = 1.0
    values = _read(tmp_path, {
        "x.weight_packed": ("U8", np.array([[0x73] + [0] * 7], dtype=np.uint8)),  # codes 3 (1.5), 7 (6.0)
        "x.weight_scale": ("F8_E4M3", scale_codes),
        "x.weight_global_scale": ("F32", np.array([4.0], dtype=np.float32)),
    })  # fmt: skip
    np.testing.assert_array_equal(values[0, :3], [1.5 / 4, 6.0 / 4, 0.0])


@pytest.mark.parametrize(
    ("encoder", "min_cosine"),
    [
        (lambda w: enc.ct_pack(w, 4, 16), 0.98),
        (lambda w: enc.ct_pack(w, 4, 16, symmetric=False), 0.98),
        (lambda w: enc.ct_pack(w, 8, None, symmetric=False), 0.9999),
        (lambda w: enc.ct_pack(w, 3, None), 0.9),
        (lambda w: enc.ct_fp8(w, 16), 0.999),
        (lambda w: enc.ct_nvfp4(w), 0.98),
        (lambda w: enc.gptq(w, 4, 16, act_order=True), 0.98),
        (lambda w: enc.gptq(w, 8, 16), 0.9999),
        (lambda w: enc.awq(w, 16), 0.98),
        (lambda w: enc.bnb_int8(w), 0.9999),
    ],
)
def test_spec_encoders_round_trip(tmp_path: Path, encoder, min_cosine: float) -> None:  # type: ignore[no-untyped-def]
    weight = np.random.default_rng(5).standard_normal((32, 64)).astype(np.float32)
    parts = encoder(weight)
    read = _read(tmp_path, {f"x.{suffix}": tensor for suffix, tensor in parts.items()})
    cosine = np.sum(read * weight, axis=1) / np.linalg.norm(read, axis=1) / np.linalg.norm(weight, axis=1)
    assert read.shape == weight.shape and cosine.min() > min_cosine


def _bnb_parts(state: bytes) -> enc.Stored:
    return {
        "x.weight": ("U8", np.zeros((2, 1), np.uint8)),
        "x.weight.absmax": ("F32", np.ones(1, np.float32)),
        "x.weight.quant_map": ("F32", np.zeros(16, np.float32)),
        "x.weight.quant_state.bitsandbytes__nf4": ("U8", np.frombuffer(state, np.uint8)),
    }


_PACKED = ("I32", np.zeros((4, 2), np.int32))
_TOO_BIG = json.dumps({"quant_type": "nf4", "blocksize": 64, "shape": [1000, 1000]}).encode()


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ({"x.weight_packed": _PACKED, "x.weight_scale": ("F32", np.ones((4, 3), np.float32)),
          "x.weight_shape": ("I64", np.array([4, 16], np.int64))}, "does not fit"),
        ({"x.weight_packed": _PACKED, "x.weight_scale": ("F32", np.ones((4, 1), np.float32)),
          "x.weight_shape": ("I64", np.array([5, 16], np.int64))}, "weight_shape"),
        ({"x_blocks": ("U8", np.zeros((2, 3, 8), np.uint8)),
          "x_scales": ("U8", np.zeros((2, 3), np.uint8))}, "MXFP4"),
        (_bnb_parts(b"{not json"), "JSON"),
        (_bnb_parts(_TOO_BIG), "cannot hold"),
        ({"x.weight": ("F8_E4M3", np.zeros((4, 4), np.uint8)),
          "x.weight_scale_inv": ("F32", np.ones((3, 1), np.float32))}, "does not tile"),
    ],
)  # fmt: skip
def test_parts_that_do_not_fit_are_a_format_error_naming_the_weight(
    tmp_path: Path, tensors: enc.Stored, message: str
) -> None:
    enc.write_safetensors(tmp_path / "m.safetensors", tensors)
    with pytest.raises(FormatError, match=message) as raised:
        SafetensorsReader(tmp_path / "m.safetensors").tensors()
    assert "m.safetensors" in str(raised.value)


def test_bitsandbytes_4bit_rows_that_share_a_byte(tmp_path: Path) -> None:
    """With an odd row length a byte holds the last value of one row and the first of the next."""
    state = {"quant_type": "fp4", "blocksize": 64, "dtype": "float32", "shape": [3, 3]}
    tensors = {
        "x.weight": ("U8", np.array([[0x01], [0x23], [0x45], [0x67], [0x80]], dtype=np.uint8)),
        "x.weight.absmax": ("F32", np.array([1.0], dtype=np.float32)),
        "x.weight.quant_map": ("F32", np.arange(16, dtype=np.float32)),
        "x.weight.quant_state.bitsandbytes__fp4": ("U8", np.frombuffer(json.dumps(state).encode(), np.uint8)),
    }
    enc.write_safetensors(tmp_path / "m.safetensors", tensors)
    with SafetensorsReader(tmp_path / "m.safetensors") as reader:
        np.testing.assert_array_equal(reader.read_rows("x.weight", [2, 1]), [[6, 7, 8], [3, 4, 5]])
