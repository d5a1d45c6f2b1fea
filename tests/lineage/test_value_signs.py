"""The value-sign test's pieces: which rows are values, which are sampled, the saved form, and the exact
null (independent value rows with symmetric signs give uniform p-values)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from modeltrace.errors import FingerprintError
from modeltrace.fingerprint.build import build_fingerprint, value_rows
from modeltrace.fingerprint.model import load_fingerprint
from modeltrace.fingerprint.roles import ValueProjection, find_value_projections
from modeltrace.formats.detect import open_model
from modeltrace.lineage.paths import value_sign_test
from modeltrace.types import TensorInfo
from tests.lineage.synthetic import make_params


def _infos(shapes: dict[str, tuple[int, ...]]) -> dict[str, TensorInfo]:
    return {name: TensorInfo(name, shape, "F32", 0, "x") for name, shape in shapes.items()}


@pytest.mark.parametrize(
    ("shapes", "value_rows_total", "expected"),
    [
        (  # Llama-style GQA, named
            {"model.layers.0.self_attn.v_proj.weight": (16, 32),
             "model.layers.0.input_layernorm.weight": (32,)},
            16, ValueProjection(0, "model.layers.0.self_attn.v_proj.weight", 0, 16, False,
                                "model.layers.0.input_layernorm.weight"),
        ),
        (  # GGUF
            {"blk.3.attn_v.weight": (8, 32), "blk.3.attn_norm.weight": (32,)},
            None, ValueProjection(3, "blk.3.attn_v.weight", 0, 8, False, "blk.3.attn_norm.weight"),
        ),
        (  # GPT-2: fused [q | k | v] stored [in, out]; values are the last third of the columns
            {"transformer.h.0.attn.c_attn.weight": (32, 96), "transformer.h.0.ln_1.weight": (32,)},
            None, ValueProjection(0, "transformer.h.0.attn.c_attn.weight", 64, 32, True,
                                  "transformer.h.0.ln_1.weight"),
        ),
        (  # Qwen-1 names it c_attn too, but stores it nn.Linear style [3 * hidden, hidden]
            {"transformer.h.2.attn.c_attn.weight": (96, 32)},
            None, ValueProjection(2, "transformer.h.2.attn.c_attn.weight", 64, 32, False, None),
        ),
        (  # Phi-3 style fused [q; k; v] rows with GQA: v is the last kv_heads * head_dim rows
            {"model.layers.1.self_attn.qkv_proj.weight": (48, 32)},
            8, ValueProjection(1, "model.layers.1.self_attn.qkv_proj.weight", 40, 8, False, None),
        ),
    ],
)  # fmt: skip
def test_value_projections_are_found_by_name(shapes, value_rows_total, expected) -> None:
    assert find_value_projections(_infos(shapes), 32, value_rows_total) == (expected,)


def test_fused_qkv_of_unknown_split_is_not_guessed() -> None:
    shapes = {"model.layers.0.self_attn.qkv_proj.weight": (48, 32)}  # GQA, but no head counts given
    assert find_value_projections(_infos(shapes), 32, None) == ()


def test_value_rows_keep_the_same_dimensions_in_every_head() -> None:
    rows = value_rows(8 * 64, 64, (8, 64), seed=3)
    per_head = rows.reshape(8, -1) - (np.arange(8) * 64)[:, None]
    assert len(rows) == 64 and all(np.array_equal(per_head[0], head) for head in per_head)
    assert value_rows(16, 64, (2, 8), seed=3).tolist() == list(range(16))  # small layers: every row
    assert len(value_rows(500, 64, None, seed=3)) == 256  # unknown heads: four times the seeded rows
    assert value_rows(200, 64, None, seed=3).tolist() == list(range(200))


def test_attention_samples_survive_save_and_load(model_factory, tmp_path: Path) -> None:
    with open_model(model_factory(make_params(1))) as source:
        built = build_fingerprint(source)
    assert [sample.layer for sample in built.attention] == [0, 1, 2, 3]
    assert built.header["value_geometry"] == [2, 12]
    path = tmp_path / "fp.mtfp"
    built.save(path)
    loaded = load_fingerprint(path)
    for a, b in zip(loaded.attention, built.attention, strict=True):
        assert a.digest == b.digest and np.array_equal(a.unit_rows, b.unit_rows)
        assert np.allclose(a.value, b.value, rtol=1e-2, atol=1e-3)


def test_malformed_attention_sample_is_a_fingerprint_error(model_factory, tmp_path: Path) -> None:
    with open_model(model_factory(make_params(1))) as source:
        built = build_fingerprint(source)
    good, bad = tmp_path / "good.mtfp", tmp_path / "bad.mtfp"
    built.save(good)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        header = json.loads(src.read("header.json"))
        header["attention"][0] = {"rows_total": 3}  # no layer
        dst.writestr("header.json", json.dumps(header))
        dst.writestr("vocabulary.json", src.read("vocabulary.json"))
        dst.writestr("arrays.npz", src.read("arrays.npz"))
    with pytest.raises(FingerprintError, match=r"bad\.mtfp"):
        load_fingerprint(bad)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        dst.writestr("header.json", src.read("header.json"))
        dst.writestr("vocabulary.json", src.read("vocabulary.json"))
        buffer = io.BytesIO()
        with np.load(io.BytesIO(src.read("arrays.npz"))) as arrays:
            data = {key: arrays[key] for key in arrays.files}
        data["a0.value"] = data["a0.value"][:, :3]
        np.savez(buffer, **data)
        dst.writestr("arrays.npz", buffer.getvalue())
    with pytest.raises(FingerprintError, match="attention sample 0"):
        load_fingerprint(bad)


def _unit_rows(rng: np.random.Generator, count: int, width: int) -> np.ndarray:
    rows = rng.standard_normal((count, width))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_value_sign_p_values_are_uniform_when_signs_are_coins() -> None:
    """The exact null: B's rows share structure with S's (a common 'universal' part, so |cosines| are
    large), but each B row's sign is a fair coin. The p-values must be uniform."""
    rng = np.random.default_rng(0)
    log_ps = []
    for _ in range(400):
        shared = _unit_rows(rng, 12, 20)
        suspect = _unit_rows(rng, 12, 20) * 0.5 + shared
        base = (_unit_rows(rng, 12, 20) * 0.5 + shared) * rng.choice([-1.0, 1.0], 12)[:, None]
        log_ps.append(value_sign_test([suspect], [base], [(0, 0)], float(rng.random())).log_p)
    assert stats.kstest(np.exp(log_ps), "uniform").pvalue > 0.001


def test_value_signs_of_a_derivative_all_agree() -> None:
    rng = np.random.default_rng(1)
    base = _unit_rows(rng, 40, 30)
    order = rng.permutation(40)
    child = base[order] + 0.3 * _unit_rows(rng, 40, 30)  # rows moved and perturbed, signs kept
    result = value_sign_test([child], [base], [(0, 0)], 0.5)
    assert result.positive == result.total == 40 and result.log_p < np.log(1e-10)


def test_a_version_1_fingerprint_loads_without_value_rows(model_factory, tmp_path: Path) -> None:
    """Fingerprints written before the value rows existed still compare (without the value-sign test)."""
    with open_model(model_factory(make_params(1))) as source:
        built = build_fingerprint(source)
    current, old = tmp_path / "v2.mtfp", tmp_path / "v1.mtfp"
    built.save(current)
    with zipfile.ZipFile(current) as src, zipfile.ZipFile(old, "w") as dst:
        header = json.loads(src.read("header.json"))
        header["format_version"] = 1
        del header["attention"]
        dst.writestr("header.json", json.dumps(header))
        dst.writestr("vocabulary.json", src.read("vocabulary.json"))
        dst.writestr("arrays.npz", src.read("arrays.npz"))
    loaded = load_fingerprint(old)
    assert loaded.attention == [] and len(loaded.blocks) == len(built.blocks)
