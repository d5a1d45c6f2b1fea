"""GGUF reader: float round trips, quantisation error bounds, K-quant block layouts, rows, metadata."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize

from modeltrace.errors import (
    CorruptFileError,
    FormatError,
    ResourceLimitError,
    TensorNotFoundError,
    UnsupportedFormatError,
)
from modeltrace.formats import open_model
from modeltrace.formats.gguf_file import GGUFReader

F16_RELATIVE_ROUNDING = 2.0**-11  # a float16 scale is off by at most this fraction of itself


def _write(path: Path, tensors: dict[str, tuple[np.ndarray, Q | None]], setup=None) -> Path:  # type: ignore[no-untyped-def]
    """A GGUF file holding ``tensors``: float arrays (qtype None) or quantised byte arrays."""
    writer = gguf.GGUFWriter(str(path), "llama")
    if setup is not None:
        setup(writer)
    for name, (array, qtype) in tensors.items():
        if qtype is None:
            writer.add_tensor(name, array)
        else:
            writer.add_tensor(name, array, raw_shape=array.shape, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_float_and_integer_tensors_round_trip_bit_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    floats = {
        "f32": rng.standard_normal((5, 32)).astype(np.float32),
        "f16": rng.standard_normal((4, 6)).astype(np.float16),
        "f64": rng.standard_normal((3,)).astype(np.float64),
        "i8": rng.integers(-128, 127, (3, 4)).astype(np.int8),
        "i32": rng.integers(-(2**30), 2**30, (2, 3, 4)).astype(np.int32),
    }
    bf16_source = rng.standard_normal((7, 8)).astype(np.float32)
    bf16 = quantize(bf16_source, Q.BF16)
    path = _write(tmp_path / "m.gguf", {**{k: (v, None) for k, v in floats.items()}, "bf16": (bf16, Q.BF16)})
    with GGUFReader(path) as reader:
        for name, expected in floats.items():
            info = reader.info(name)
            assert info.shape == expected.shape, name
            got = reader.read(name)
            assert np.array_equal(got, expected.astype(got.dtype)), name
            assert reader.raw(name) == expected.tobytes(), name
        assert reader.info("bf16").dtype == "BF16"
        assert reader.info("bf16").shape == (7, 8)
        expected_bf16 = torch.from_numpy(bf16_source).to(torch.bfloat16).float().numpy()
        assert np.array_equal(reader.read("bf16"), expected_bf16)
        assert {reader.info(n).dtype for n in floats} == {"F32", "F16", "F64", "I8", "I32"}


def _blockwise_max(values: np.ndarray, block: int) -> np.ndarray:
    return np.abs(values.reshape(-1, block)).max(axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("qtype", "levels", "steps_of_error"),
    [
        # Q8_0: d = max|x| / 127 per block of 32, codes round to nearest: half a step of error.
        (Q.Q8_0, 127, 0.5),
        # Q4_0: d = -max|x| / 8, codes in [-8, 7]: the value opposite the maximum may clip a whole step.
        (Q.Q4_0, 8, 1.0),
    ],
)
def test_legacy_quants_dequantise_within_the_quantiser_error(
    tmp_path: Path, qtype: Q, levels: int, steps_of_error: float
) -> None:
    rng = np.random.default_rng(1)
    weights = rng.standard_normal((16, 128)).astype(np.float32)
    blocks = quantize(weights, qtype)
    path = _write(tmp_path / "q.gguf", {"w": (blocks, qtype)})
    reader = GGUFReader(path)
    info = reader.info("w")
    assert (info.shape, info.dtype, info.nbytes) == ((16, 128), qtype.name, blocks.nbytes)
    got = reader.read("w")
    assert np.array_equal(got, dequantize(blocks, qtype))
    step = _blockwise_max(weights, 32) / levels
    # The stored scale is float16: every code can be off by its rounding on top of the code error.
    bound = step * (steps_of_error + levels * F16_RELATIVE_ROUNDING)
    error = np.abs(got - weights).reshape(-1, 32)
    assert np.all(error <= bound), float((error / bound).max())
    # The bound is tight enough to mean something: the typical error is a fair part of it.
    assert float((error / bound).max()) > 0.3


# -- K-quants: gguf cannot quantise them, so build blocks from chosen integer codes and check the
#    reader against values computed from those codes by the formulas of ggml-quants.c.


def _f16(value: np.ndarray) -> np.ndarray:
    return value.astype(np.float16)


def _q6_k_block(d: np.float16, scales: np.ndarray, codes: np.ndarray) -> tuple[bytes, np.ndarray]:
    """scales: 16 int8 (one per 16 values); codes: 256 values in 0..63. value = d*scale*(code-32)."""
    ql, qh = np.zeros(128, np.uint8), np.zeros(64, np.uint8)
    for half in range(2):
        for lane in range(32):
            q = [int(codes[half * 128 + 32 * k + lane]) for k in range(4)]
            ql[half * 64 + lane] = (q[0] & 0xF) | ((q[2] & 0xF) << 4)
            ql[half * 64 + lane + 32] = (q[1] & 0xF) | ((q[3] & 0xF) << 4)
            qh[half * 32 + lane] = sum((q[k] >> 4) << (2 * k) for k in range(4))
    data = ql.tobytes() + qh.tobytes() + scales.astype(np.int8).tobytes() + np.float16(d).tobytes()
    values = np.float32(d) * np.repeat(scales.astype(np.float32), 16) * (codes.astype(np.float32) - 32)
    return data, values


def _pack_k_scales(sc: np.ndarray, mins: np.ndarray) -> bytes:
    """The 12-byte 6-bit packing of 8 scales and 8 mins shared by Q4_K and Q5_K."""
    packed = np.zeros(12, np.uint8)
    for j in range(4):
        packed[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6)
        packed[j + 4] = (mins[j] & 63) | ((mins[j + 4] >> 4) << 6)
        packed[j + 8] = (sc[j + 4] & 0xF) | ((mins[j + 4] & 0xF) << 4)
    return packed.tobytes()


def _k_values(
    d: np.float16, dmin: np.float16, sc: np.ndarray, mins: np.ndarray, codes: np.ndarray
) -> np.ndarray:
    scale = np.repeat(np.float32(d) * sc.astype(np.float32), 32)
    offset = np.repeat(np.float32(dmin) * mins.astype(np.float32), 32)
    return scale * codes.astype(np.float32) - offset


def _q4_k_block(d, dmin, sc, mins, codes):  # type: ignore[no-untyped-def]
    """8 sub-blocks of 32 values, codes 0..15: value = d*sc[j]*code - dmin*min[j]."""
    qs = np.zeros(128, np.uint8)
    for chunk in range(4):
        low, high = codes[64 * chunk : 64 * chunk + 32], codes[64 * chunk + 32 : 64 * chunk + 64]
        qs[32 * chunk : 32 * chunk + 32] = low | (high << 4)
    data = np.float16(d).tobytes() + np.float16(dmin).tobytes() + _pack_k_scales(sc, mins) + qs.tobytes()
    return data, _k_values(d, dmin, sc, mins, codes)


def _q5_k_block(d, dmin, sc, mins, codes):  # type: ignore[no-untyped-def]
    """As Q4_K with codes 0..31; the fifth bits live in qh (bit 2c / 2c+1 for chunk c)."""
    qs, qh = np.zeros(128, np.uint8), np.zeros(32, np.uint8)
    for chunk in range(4):
        low, high = codes[64 * chunk : 64 * chunk + 32], codes[64 * chunk + 32 : 64 * chunk + 64]
        qs[32 * chunk : 32 * chunk + 32] = (low & 0xF) | ((high & 0xF) << 4)
        qh |= ((low >> 4) << (2 * chunk)).astype(np.uint8) | ((high >> 4) << (2 * chunk + 1)).astype(np.uint8)
    data = np.float16(d).tobytes() + np.float16(dmin).tobytes() + _pack_k_scales(sc, mins)
    return data + qh.tobytes() + qs.tobytes(), _k_values(d, dmin, sc, mins, codes)


def _k_quant_tensor(qtype: Q, rows: int, blocks_per_row: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data, values = [], []
    for _ in range(rows * blocks_per_row):
        d, dmin = _f16(rng.uniform(0.001, 0.05, 1))[0], _f16(rng.uniform(0.001, 0.05, 1))[0]
        if qtype == Q.Q6_K:
            block, value = _q6_k_block(d, rng.integers(-128, 128, 16), rng.integers(0, 64, 256))
        else:
            sc, mins = rng.integers(0, 64, 8).astype(np.uint8), rng.integers(0, 64, 8).astype(np.uint8)
            top = 16 if qtype == Q.Q4_K else 32
            codes = rng.integers(0, top, 256).astype(np.uint8)
            block, value = (_q4_k_block if qtype == Q.Q4_K else _q5_k_block)(d, dmin, sc, mins, codes)
        data.append(block)
        values.append(value)
    raw = np.frombuffer(b"".join(data), np.uint8).reshape(rows, -1)
    return raw, np.concatenate(values).reshape(rows, blocks_per_row * 256)


@pytest.mark.parametrize("qtype", [Q.Q4_K, Q.Q5_K, Q.Q6_K])
def test_k_quants_match_the_block_formulas_and_read_only_wanted_rows(tmp_path: Path, qtype: Q) -> None:
    raw, expected = _k_quant_tensor(qtype, rows=10, blocks_per_row=2, seed=int(qtype))
    assert raw.shape[1] == 2 * gguf.GGML_QUANT_SIZES[qtype][1]
    path = _write(tmp_path / "k.gguf", {"w": (raw, qtype)})
    reader = GGUFReader(path)
    assert reader.info("w").shape == (10, 512)
    whole = reader.read("w")
    np.testing.assert_allclose(whole, expected, rtol=1e-6, atol=1e-6)
    assert np.array_equal(whole, dequantize(raw, qtype))
    before = reader.bytes_read
    rows = [9, 2, 3, 2]
    assert np.array_equal(reader.read_rows("w", rows), whole[rows])
    # Rows 2..3 are one run, row 9 another: exactly three rows' blocks are fetched.
    assert reader.bytes_read - before == 3 * raw.shape[1]


def test_empty_quantised_tensor_reads_as_empty(tmp_path: Path) -> None:
    content = _gguf_bytes(tensor_count=1, tensors=_tensor("w", [32, 0], ggml_type=int(Q.Q8_0)))
    path = tmp_path / "empty.gguf"
    path.write_bytes(content)
    reader = GGUFReader(path)
    assert reader.info("w").shape == (0, 32)
    assert reader.read("w").shape == (0, 32)
    assert reader.read_rows("w", []).shape == (0, 32)


def test_three_dimensional_quantised_tensor_keeps_numpy_order(tmp_path: Path) -> None:
    experts = np.random.default_rng(3).standard_normal((4, 3, 64)).astype(np.float32)
    blocks = quantize(experts, Q.Q8_0)
    reader = GGUFReader(_write(tmp_path / "moe.gguf", {"experts": (blocks, Q.Q8_0)}))
    assert reader.info("experts").shape == (4, 3, 64)
    whole = reader.read("experts")
    assert np.array_equal(reader.read_rows("experts", [3, 0]), whole[[3, 0]])
    assert reader.read_rows("experts", []).shape == (0, 3, 64)


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_0, None])
def test_flat_rows_of_stacked_experts_read_only_those_rows(tmp_path: Path, qtype: Q | None) -> None:
    experts = np.random.default_rng(4).standard_normal((4, 5, 64)).astype(np.float32)
    stored = experts if qtype is None else quantize(experts, qtype)
    reader = GGUFReader(_write(tmp_path / "moe.gguf", {"experts": (stored, qtype)}))
    whole = reader.read("experts")
    row_bytes = reader.info("experts").nbytes // 20
    before = reader.bytes_read
    # Expert 2's rows 4 and 0, then expert 3's row 0 (flat row 15, right after flat row 14).
    got = reader.read_flat_rows("experts", [2 * 5 + 4, 2 * 5 + 0, 3 * 5 + 0])
    assert np.array_equal(got, np.stack([whole[2, 4], whole[2, 0], whole[3, 0]]))
    assert reader.bytes_read - before == 3 * row_bytes
    with pytest.raises(TensorNotFoundError):  # past the last expert's last row
        reader.read_flat_rows("experts", [20])


def _metadata(writer: gguf.GGUFWriter) -> None:
    writer.add_name("Tiny Llama Finetune")
    writer.add_license("llama2")
    writer.add_license_name("Llama 2 Community License")
    writer.add_base_model_count(2)
    writer.add_base_model_name(0, "Llama 2 7b Hf")
    writer.add_base_model_organization(0, "Meta Llama")
    writer.add_base_model_repo_url(0, "https://huggingface.co/meta-llama/Llama-2-7b-hf")
    writer.add_base_model_name(1, "Mistral")
    writer.add_base_model_organization(1, "mistralai")
    writer.add_dataset_count(1)
    writer.add_dataset_repo_url(0, "https://huggingface.co/tatsu-lab/alpaca")
    writer.add_uint32("llama.context_length", 4096)
    writer.add_array("short.list", [1, 2, 3])
    writer.add_array("tokenizer.ggml.scores", [0.5] * 200)
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "hello", b"\xff\xfe", *[f"t{i}" for i in range(197)]])


def test_metadata_vocabulary_and_declared_claims(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.gguf", {"w": (np.ones((2, 32), np.float32), None)}, _metadata)
    reader = GGUFReader(path)
    meta = reader.metadata
    assert meta["general.name"] == "Tiny Llama Finetune"
    assert meta["llama.context_length"] == 4096
    assert meta["short.list"] == [1, 2, 3]
    assert meta["tokenizer.ggml.scores"] == {"type": "array", "element_type": "FLOAT32", "length": 200}
    assert meta["tokenizer.ggml.tokens"]["length"] == 200
    vocabulary = reader.vocabulary()
    assert vocabulary is not None and len(vocabulary) == 200
    assert vocabulary[:2] == ["<s>", "hello"]
    assert vocabulary[2].encode("utf-8", "surrogateescape") == b"\xff\xfe"
    declared = reader.declared()
    assert declared.base_models == ("meta-llama/Llama-2-7b-hf", "mistralai/Mistral")
    assert declared.license == "llama2"
    assert declared.license_name == "Llama 2 Community License"
    assert declared.datasets == ("tatsu-lab/alpaca",)
    assert declared.name == "Tiny Llama Finetune"
    assert declared.extra["general.architecture"] == "llama"
    source = open_model(path)
    assert source.format == "gguf"
    assert source.declared == declared


def test_file_without_vocabulary_or_claims(tmp_path: Path) -> None:
    reader = GGUFReader(_write(tmp_path / "m.gguf", {}))
    assert reader.vocabulary() is None
    assert reader.declared().base_models == ()
    assert dict(reader.tensors()) == {}


# -- hostile files -----------------------------------------------------------------------------


def _gguf_bytes(
    *,
    magic: bytes = b"GGUF",
    version: int = 3,
    kvs: bytes = b"",
    kv_count: int = 0,
    tensors: bytes = b"",
    tensor_count: int = 0,
    data: bytes = b"",
) -> bytes:
    head = magic + struct.pack("<IQQ", version, tensor_count, kv_count) + kvs + tensors
    return head + b"\0" * (-len(head) % 32) + data


def _string(text: str, claimed: int | None = None) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw) if claimed is None else claimed) + raw


def _tensor(name: str, dims: list[int], ggml_type: int = 0, offset: int = 0) -> bytes:
    return (
        _string(name)
        + struct.pack("<I", len(dims))
        + struct.pack(f"<{len(dims)}Q", *dims)
        + struct.pack("<IQ", ggml_type, offset)
    )


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (_gguf_bytes(magic=b"GGUX"), CorruptFileError, "magic"),
        (_gguf_bytes(version=1), UnsupportedFormatError, "version 1"),
        (_gguf_bytes(version=3 << 24), UnsupportedFormatError, "big-endian"),
        (_gguf_bytes(version=77), CorruptFileError, "unknown GGUF version"),
        (_gguf_bytes(tensor_count=2**60), ResourceLimitError, "tensors"),
        (_gguf_bytes(kv_count=2**40), ResourceLimitError, "metadata entries"),
        (_gguf_bytes(kv_count=1000), CorruptFileError, "more than the file holds"),
        (_gguf_bytes(kv_count=1, kvs=_string("k", claimed=2**50) + b"\0" * 8), CorruptFileError, "truncated"),
        (_gguf_bytes(kv_count=1, kvs=_string("k") + struct.pack("<I", 99) + b"\0" * 8), CorruptFileError,
         "unknown value type"),
        (_gguf_bytes(kv_count=1, kvs=_string("k") + struct.pack("<IIQ", 9, 4, 2**40)), ResourceLimitError,
         "items"),
        (_gguf_bytes(kv_count=1, kvs=_string("k") + struct.pack("<IIQ", 9, 8, 10**6)), CorruptFileError,
         "more than the file holds"),
        (_gguf_bytes(kv_count=2, kvs=(_string("k") + struct.pack("<IB", 0, 1)) * 2), CorruptFileError,
         "twice"),
        (_gguf_bytes(kv_count=1, kvs=_string("general.alignment") + struct.pack("<II", 4, 3)),
         CorruptFileError, "power of two"),
        (_gguf_bytes(tensor_count=1, tensors=_tensor("w", [4], offset=0)), CorruptFileError, "past the end"),
        (_gguf_bytes(tensor_count=1, tensors=_tensor("w", [4], offset=5), data=b"\0" * 64), CorruptFileError,
         "multiple of 32"),
        (_gguf_bytes(tensor_count=1, tensors=_tensor("w", [4], ggml_type=250), data=b"\0" * 16),
         UnsupportedFormatError, "unknown ggml type"),
        (_gguf_bytes(tensor_count=1, tensors=_tensor("w", [33, 2], ggml_type=8), data=b"\0" * 256),
         CorruptFileError, "blocks of 32"),
        (_gguf_bytes(tensor_count=1, tensors=_tensor("w", [1] * 9)), CorruptFileError, "dimensions"),
        (_gguf_bytes(tensor_count=1, tensors=_tensor("w", [2**40, 2**40])), ResourceLimitError, "elements"),
        (_gguf_bytes(tensor_count=2, tensors=_tensor("a", [8]) + _tensor("b", [8]), data=b"\0" * 64),
         CorruptFileError, "overlap"),
        (_gguf_bytes(tensor_count=2, tensors=_tensor("a", [8]) + _tensor("a", [8], 0, 32), data=b"\0" * 64),
         CorruptFileError, "listed twice"),
    ],
)  # fmt: skip
def test_malformed_headers_give_specific_errors(
    tmp_path: Path, content: bytes, error: type, message: str
) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(error, match=message) as info:
        GGUFReader(path)
    assert isinstance(info.value, FormatError)
    assert "bad.gguf" in str(info.value)


def test_random_corruptions_raise_only_format_errors(tmp_path: Path) -> None:
    weights = np.random.default_rng(4).standard_normal((4, 64)).astype(np.float32)
    tensors = {"q": (quantize(weights, Q.Q8_0), Q.Q8_0), "f": (weights, None)}
    original = _write(tmp_path / "ok.gguf", tensors, _metadata).read_bytes()
    rng = np.random.default_rng(5)
    path = tmp_path / "mutant.gguf"
    outcomes = {"opened": 0, "refused": 0}
    for trial in range(300):
        data = bytearray(original)
        if trial % 3 == 0:
            data = data[: int(rng.integers(0, len(data)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                position = int(rng.integers(0, min(len(data), 2048)))
                data[position] = int(rng.integers(0, 256))
        path.write_bytes(bytes(data))
        try:
            with GGUFReader(path) as reader:
                for name in reader.tensors():
                    reader.read(name)
                    reader.read_rows(name, [0])
                reader.declared()
            outcomes["opened"] += 1
        except FormatError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 50 and outcomes["opened"] > 10, outcomes
