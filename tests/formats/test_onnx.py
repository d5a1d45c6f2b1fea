"""ONNX reader: stored dtypes, dequantisation patterns, external data by range, graph helpers, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from modeltrace.errors import CorruptFileError, FormatError, TensorNotFoundError
from modeltrace.formats import open_model
from modeltrace.formats.onnx_file import ONNXReader
from modeltrace.formats.symlinks import symlink_policy


def _save(path: Path, nodes: list[onnx.NodeProto], initializers: list[TensorProto], opset: int = 17) -> Path:
    graph = helper.make_graph(nodes, "g", [], [], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test")
    onnx.save_model(model, str(path))
    return path


def _stored_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "f32": rng.standard_normal((5, 3)).astype(np.float32),
        "f16": rng.standard_normal((4, 6)).astype(np.float16),
        "f64": rng.standard_normal((2,)).astype(np.float64),
        "i8": rng.integers(-128, 127, (3, 3)).astype(np.int8),
        "u8": rng.integers(0, 255, (2, 2, 2)).astype(np.uint8),
        "i32": rng.integers(-(2**30), 2**30, (4,)).astype(np.int32),
        "i64": rng.integers(-(2**40), 2**40, (7,)).astype(np.int64),
        "b": rng.integers(0, 2, (4,)).astype(bool),
        "scalar": np.array(3.5, dtype=np.float32),
    }


@pytest.mark.parametrize("raw", [True, False])
def test_initializers_round_trip_bit_exactly_from_raw_and_typed_fields(tmp_path: Path, raw: bool) -> None:
    initializers = []
    for name, array in _stored_arrays().items():
        data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        # Typed fields: make_tensor converts the values itself (FLOAT16 to bit patterns in int32_data).
        values = array.tobytes() if raw else array.flatten().tolist()
        initializers.append(helper.make_tensor(name, data_type, array.shape, values, raw=raw))
    bf16 = torch.randn(3, 4, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    bits = bf16.view(torch.int16).numpy().view(np.uint16)
    bf16_values = bits.tobytes() if raw else bf16.float().flatten().tolist()
    initializers.append(helper.make_tensor("bf16", TensorProto.BFLOAT16, (3, 4), bf16_values, raw=raw))
    reader = ONNXReader(_save(tmp_path / "m.onnx", [], initializers))
    for name, expected in _stored_arrays().items():
        got = reader.read(name)
        assert got.shape == expected.shape, name
        assert np.array_equal(got, expected.astype(got.dtype)), name
        assert reader.raw(name) == expected.tobytes(), name
    assert np.array_equal(reader.read("bf16"), bf16.float().numpy())
    assert reader.info("bf16").dtype == "BF16"
    assert np.array_equal(reader.read_rows("f32", [4, 0]), _stored_arrays()["f32"][[4, 0]])
    with pytest.raises(TensorNotFoundError):
        reader.read_rows("f32", [5])
    assert reader.metadata["onnx.producer_name"] == "test"


def test_int4_initializers_unpack_low_nibble_first(tmp_path: Path) -> None:
    values = np.array([[-8, 7, 0], [1, -1, 3]], dtype=np.int8)
    typed = helper.make_tensor("w", TensorProto.INT4, values.shape, values.flatten().tolist())
    raw = helper.make_tensor("w", TensorProto.INT4, values.shape, bytes([0x78, 0x10, 0x3F]), raw=True)
    for tensor in (typed, raw):
        reader = ONNXReader(_save(tmp_path / "m.onnx", [], [tensor], opset=21))
        assert reader.info("w").nbytes == 3
        assert np.array_equal(reader.read("w"), values)
        assert np.array_equal(reader.read_rows("w", [1]), values[[1]])


def _quantise(weights: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, dtype: type) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(weights / scale) + zero_point, info.min, info.max).astype(dtype)


def _dq_model(tmp_path: Path, axis: int | None, dtype: type) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    weights = rng.standard_normal((6, 8)).astype(np.float32)
    if axis is None:
        scale = np.array(np.abs(weights).max() / 100, dtype=np.float32)
        zero_point = np.array(3 if dtype == np.int8 else 128, dtype=dtype)
        broadcast_scale, broadcast_zp = scale, zero_point
    else:
        scale = (np.abs(weights).max(axis=1 - axis) / 100).astype(np.float32)
        zero_point = rng.integers(-5, 5, weights.shape[axis]).astype(dtype) + (0 if dtype == np.int8 else 128)
        shape = (-1, 1) if axis == 0 else (1, -1)
        broadcast_scale, broadcast_zp = scale.reshape(shape), zero_point.reshape(shape)
    quantised = _quantise(weights, broadcast_scale, broadcast_zp.astype(np.float32), dtype)
    expected = (quantised.astype(np.float32) - broadcast_zp.astype(np.float32)) * broadcast_scale
    attributes = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], name="dq", **attributes)]
    initializers = [
        numpy_helper.from_array(quantised, "w_q"),
        numpy_helper.from_array(scale, "w_scale"),
        numpy_helper.from_array(zero_point, "w_zp"),
    ]
    path = _save(tmp_path / "dq.onnx", nodes, initializers)
    return path, weights, expected


@pytest.mark.parametrize(("axis", "dtype"), [(None, np.int8), (None, np.uint8), (0, np.int8), (1, np.uint8)])
def test_dequantize_linear_is_folded_and_within_half_a_step(
    tmp_path: Path, axis: int | None, dtype: type
) -> None:
    path, weights, expected = _dq_model(tmp_path, axis, dtype)
    reader = ONNXReader(path)
    assert set(reader.tensors()) == {"w"}
    assert set(reader.stored_tensors()) == {"w_q", "w_scale", "w_zp"}
    info = reader.info("w")
    assert (info.shape, info.dtype) == ((6, 8), "QI8" if dtype == np.int8 else "QU8")
    got = reader.read("w")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    step = np.abs(weights).max() / 100  # the largest scale used; every code rounds to nearest
    assert np.abs(got - weights).max() <= step / 2 * (1 + 1e-5)
    assert np.array_equal(reader.read_rows("w", [5, 1, 2]), got[[5, 1, 2]])
    found = reader.dequantization()["w"]
    assert (found.pattern, found.quantized, found.scale, found.zero_point) == (
        "DequantizeLinear",
        "w_q",
        "w_scale",
        "w_zp",
    )


def test_blocked_dequantize_linear(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    quantised = rng.integers(-127, 127, (5, 8)).astype(np.int8)
    scale = rng.uniform(0.01, 0.1, (2, 8)).astype(np.float32)  # blocks of 3 rows along axis 0
    node = helper.make_node("DequantizeLinear", ["q", "s"], ["w"], axis=0, block_size=3)
    inits = [numpy_helper.from_array(quantised, "q"), numpy_helper.from_array(scale, "s")]
    reader = ONNXReader(_save(tmp_path / "b.onnx", [node], inits, opset=21))
    expected = quantised.astype(np.float32) * np.repeat(scale, 3, axis=0)[:5]
    assert np.array_equal(reader.read("w"), expected)
    assert np.array_equal(reader.read_rows("w", [4, 0, 3]), expected[[4, 0, 3]])


@pytest.mark.parametrize("with_zero_point", [False, True])
def test_cast_mul_pattern_is_folded(tmp_path: Path, with_zero_point: bool) -> None:
    rng = np.random.default_rng(4)
    weights = rng.standard_normal((8, 4)).astype(np.float32)
    scale = (np.abs(weights).max(axis=0, keepdims=True) / 120).astype(np.float32)  # [1, out] per column
    zero_point = np.array([[2, -3, 0, 1]], dtype=np.int8) if with_zero_point else np.zeros((1, 4), np.int8)
    quantised = _quantise(weights, scale, zero_point.astype(np.float32), np.int8)
    nodes = [helper.make_node("Cast", ["w_q"], ["w_f"], to=TensorProto.FLOAT)]
    inits = [numpy_helper.from_array(quantised, "w_q"), numpy_helper.from_array(scale, "w_scale")]
    if with_zero_point:
        nodes.append(helper.make_node("Sub", ["w_f", "w_zp"], ["w_c"]))
        nodes.append(helper.make_node("Mul", ["w_scale", "w_c"], ["w"]))
        inits.append(numpy_helper.from_array(zero_point, "w_zp"))
    else:
        nodes.append(helper.make_node("Mul", ["w_f", "w_scale"], ["w"]))
    reader = ONNXReader(_save(tmp_path / "c.onnx", nodes, inits))
    assert list(reader.tensors()) == ["w"]
    expected = (quantised.astype(np.float32) - zero_point) * scale
    assert np.array_equal(reader.read("w"), expected)
    assert np.abs(reader.read("w") - weights).max() <= scale.max() / 2 * (1 + 1e-5)
    assert reader.dequantization()["w"].pattern == ("Cast+Sub+Mul" if with_zero_point else "Cast+Mul")


def test_scale_shared_with_other_nodes_stays_visible(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("DequantizeLinear", ["q", "s"], ["w"]),
        helper.make_node("Mul", ["x", "s"], ["y"]),  # the scale is also an ordinary input elsewhere
    ]
    inits = [
        numpy_helper.from_array(np.ones((2, 2), np.int8), "q"),
        numpy_helper.from_array(np.float32(0.5), "s"),
    ]
    reader = ONNXReader(_save(tmp_path / "s.onnx", nodes, inits))
    assert set(reader.tensors()) == {"w", "s"}


def test_external_data_is_read_by_range(tmp_path: Path) -> None:
    weights = np.arange(200 * 16, dtype=np.float32).reshape(200, 16)
    quantised = (np.arange(100 * 32) % 255 - 127).astype(np.int8).reshape(100, 32)
    scale = np.full((100, 1), 0.25, np.float32)
    nodes = [
        helper.make_node("Cast", ["e_q"], ["e_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["e_f", "e_scale"], ["embed"]),
    ]
    inits = [
        numpy_helper.from_array(weights, "w"),
        numpy_helper.from_array(quantised, "e_q"),
        numpy_helper.from_array(scale, "e_scale"),
    ]
    graph = helper.make_graph(nodes, "g", [], [], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
    reader = open_model(path).weights
    assert isinstance(reader, ONNXReader)
    assert reader.info("w").file.endswith("weights.bin")
    before = reader.bytes_read
    assert np.array_equal(reader.read_rows("w", [7, 8, 150]), weights[[7, 8, 150]])
    assert reader.bytes_read - before == 3 * 16 * 4
    before = reader.bytes_read
    got = reader.read_rows("embed", [99, 3])
    assert np.array_equal(got, quantised[[99, 3]].astype(np.float32) * 0.25)
    assert reader.bytes_read - before == 2 * 32 + 100 * 4  # two int8 rows, and the scale once
    assert np.array_equal(reader.read("w"), weights)


def test_external_data_outside_the_folder_is_refused(tmp_path: Path) -> None:
    tensor = numpy_helper.from_array(np.ones(4, np.float32), "w")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../secret.bin"
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    folder = tmp_path / "model"
    folder.mkdir()
    with pytest.raises(CorruptFileError, match="outside the model folder"):
        ONNXReader(_save(folder / "m.onnx", [], [tensor]))


def test_external_data_through_a_symlink_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    tensor = numpy_helper.from_array(np.ones(4, np.float32), "w")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").symlink_to(tmp_path / "secret.bin")
    with pytest.raises(FormatError, match="outside the model folder"):
        ONNXReader(_save(folder / "m.onnx", [], [tensor]))
    with symlink_policy("always"), ONNXReader(folder / "m.onnx") as reader:  # --follow-symlinks
        assert reader.read("w").tolist() == [0.0] * 4


def test_graph_helpers_find_weights_layout_and_bias(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)

    def init(name: str, shape: tuple[int, ...], dtype: type = np.float32) -> TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)

    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"], name="mm1"),  # x @ W, W stored [in, out]
        helper.make_node("Add", ["h1", "b1"], ["h1b"]),
        helper.make_node("Gemm", ["h1b", "w2", "b2"], ["h2"], name="gemm", transB=1),  # W stored [out, in]
        helper.make_node("Transpose", ["w3"], ["w3t"], perm=[1, 0]),
        helper.make_node(
            "MatMul", ["h2", "w3t"], ["h3"], name="mm3"
        ),  # stored [out, in], transposed in graph
        helper.make_node("MatMul", ["h3", "h3"], ["h4"], name="activations_only"),
        helper.make_node("DynamicQuantizeLinear", ["h4"], ["a_q", "a_scale", "a_zp"]),
        helper.make_node("MatMulInteger", ["a_q", "W_quantized", "a_zp", "W_zero_point"], ["p"], name="mmi"),
        helper.make_node("Mul", ["a_scale", "W_scale"], ["combined_scale"]),
        helper.make_node("Cast", ["p"], ["p_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["p_f", "combined_scale"], ["h5"]),
        helper.make_node("Add", ["h5", "b5"], ["out"]),
    ]
    w_quantized = rng.integers(0, 255, (4, 3)).astype(np.uint8)
    inits = [
        init("w1", (4, 5)), init("b1", (5,)), init("w2", (6, 5)), init("b2", (6,)), init("w3", (4, 6)),
        numpy_helper.from_array(w_quantized, "W_quantized"),
        numpy_helper.from_array(np.float32(0.02), "W_scale"),
        numpy_helper.from_array(np.uint8(128), "W_zero_point"),
        init("b5", (3,)),
    ]  # fmt: skip
    reader = ONNXReader(_save(tmp_path / "g.onnx", nodes, inits))
    found = {(m.node, m.weight, m.input_index, m.transposed, m.bias) for m in reader.matmul_weights()}
    assert found == {
        ("mm1", "w1", 1, True, "b1"),
        ("gemm", "w2", 1, False, "b2"),
        ("mm3", "w3", 1, False, None),
        ("mmi", "W", 1, True, "b5"),
    }
    assert "W" in reader.tensors() and "W_quantized" not in reader.tensors()
    assert np.array_equal(reader.read("W"), (w_quantized.astype(np.float32) - 128) * np.float32(0.02))
    graph = reader.graph()
    assert [node.name for node in graph.consumers("w3")] == [""]
    assert graph.consumers("w3")[0].op_type == "Transpose"
    producer = graph.producer("h1")
    assert producer is not None and producer.name == "mm1"
    assert graph.producer("w1") is None


def _attention_graph(tmp_path: Path, fused: bool) -> ONNXReader:
    """One attention: q, k, v projections (or one fused qkv and a Split), softmax(q kᵀ) @ v."""
    rng = np.random.default_rng(3)
    if fused:
        projections = [
            helper.make_node("MatMul", ["x", "w_qkv"], ["qkv"], name="mm_qkv"),
            helper.make_node("Split", ["qkv"], ["q", "k", "v"], axis=-1, num_outputs=3),
        ]
        inits = [numpy_helper.from_array(rng.standard_normal((8, 24)).astype(np.float32), "w_qkv")]
    else:
        projections = [helper.make_node("MatMul", ["x", f"w_{n}"], [n], name=f"mm_{n}") for n in "qkv"]
        inits = [
            numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), f"w_{n}") for n in "qkv"
        ]
        inits.append(numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b_v"))
        projections[2] = helper.make_node("MatMul", ["x", "w_v"], ["v_raw"], name="mm_v")
        projections.append(helper.make_node("Add", ["v_raw", "b_v"], ["v"]))
    nodes = [
        *projections,
        helper.make_node("Transpose", ["k"], ["kt"], perm=[1, 0]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"], name="scores"),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
        helper.make_node("Cast", ["probs"], ["probs_f"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["probs_f", "v"], ["mixed"], name="mixed"),
    ]
    return ONNXReader(_save(tmp_path / "attention.onnx", nodes, inits, opset=18))


def test_attention_values_are_found_from_the_graph_not_names(tmp_path: Path) -> None:
    values = _attention_graph(tmp_path, fused=False).graph().attention_value_weights()
    assert [(v.node, v.weight, v.transposed) for v in values] == [("mm_v", "w_v", True)]


def test_a_fused_qkv_projection_is_not_taken_for_values(tmp_path: Path) -> None:
    assert _attention_graph(tmp_path, fused=True).graph().attention_value_weights() == []


# -- hostile files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff" * 64, "not a valid ONNX protobuf"),
        (b"", "no graph"),
        (b"\x08\x07", "no graph"),  # ir_version only
    ],
)
def test_non_models_are_corrupt(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match=message):
        ONNXReader(path)


def test_inconsistent_initializers_are_corrupt(tmp_path: Path) -> None:
    short = numpy_helper.from_array(np.ones(4, np.float32), "w")
    short.raw_data = b"\0" * 12
    with pytest.raises(CorruptFileError, match="needs 16"):
        ONNXReader(_save(tmp_path / "a.onnx", [], [short]))
    typed = helper.make_tensor("w", TensorProto.FLOAT, (3,), [1.0, 2.0, 3.0])
    del typed.float_data[2]
    with pytest.raises(CorruptFileError, match="shape needs 3"):
        ONNXReader(_save(tmp_path / "b.onnx", [], [typed]))
    twice = [numpy_helper.from_array(np.ones(1, np.float32), "w")] * 2
    with pytest.raises(CorruptFileError, match="twice"):
        ONNXReader(_save(tmp_path / "c.onnx", [], twice))


def test_random_corruptions_raise_only_format_errors(tmp_path: Path) -> None:
    path, _, _ = _dq_model(tmp_path, 0, np.int8)
    original = path.read_bytes()
    rng = np.random.default_rng(6)
    mutant = tmp_path / "mutant.onnx"
    outcomes = {"opened": 0, "refused": 0}
    for trial in range(300):
        data = bytearray(original)
        if trial % 3 == 0:
            data = data[: int(rng.integers(0, len(data)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        mutant.write_bytes(bytes(data))
        try:
            reader = ONNXReader(mutant)
            for name, info in reader.tensors().items():
                reader.read(name)
                if info.shape and info.shape[0]:
                    reader.read_rows(name, [0])
            reader.matmul_weights()
            reader.graph().attention_value_weights()
            outcomes["opened"] += 1
        except FormatError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 30 and outcomes["opened"] > 30, outcomes
