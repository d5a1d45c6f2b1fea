"""The value-sign test on multi-head latent attention (DeepSeek/Kimi-shaped models): which rows of
``kv_b_proj`` are values, that flipping one with its ``o_proj`` column preserves the function, that the
fingerprint reads them, the exact null on independent MLA pairs, and detection of a child whose MLP
units were permuted and sign-flipped (the MLP tests' blind spot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from modeltrace.fingerprint.build import build_fingerprint
from modeltrace.fingerprint.mla import MlaGeometry, find_mla_values, mla_geometry
from modeltrace.fingerprint.model import Fingerprint
from modeltrace.fingerprint.roles import SHARED_EXPERT
from modeltrace.formats.detect import open_model
from modeltrace.lineage.compare import compare_fingerprints
from modeltrace.types import TensorInfo
from tests.lineage.synthetic import fine_tune
from tests.lineage.synthetic_mla import (
    SHAPE,
    flip_value_signs,
    make_mla_params,
    mla_attention,
    permute_and_flip_units,
    permute_heads,
    rotate_mla_residual,
    write_mla_model,
)

BASE = make_mla_params(1)


def _fp(folder: Path) -> Fingerprint:
    with open_model(folder) as source:
        return build_fingerprint(source)


@pytest.fixture(scope="module")
def base_fp(tmp_path_factory: pytest.TempPathFactory) -> Fingerprint:
    return _fp(write_mla_model(tmp_path_factory.mktemp("mla-base"), BASE))


def test_value_dimensions_are_the_rows_after_each_heads_key_rows() -> None:
    geometry = MlaGeometry(heads=2, nope=3, v_dim=2, kv_lora=4)
    # kv_b_proj rows: head 0 = [k k k v v], head 1 = [k k k v v]
    assert geometry.tensor_rows(np.arange(4)).tolist() == [3, 4, 8, 9]


def test_flipping_a_value_dimension_with_its_output_column_preserves_the_attention() -> None:
    """The symmetry the test's null rests on, checked on a numpy MLA attention with rotary keys; a flip
    of key rows instead (or of the value row alone) changes the output, so the check can fail."""
    x = np.random.default_rng(0).standard_normal((7, SHAPE.hidden))
    before = mla_attention(BASE, 1, x)
    moved = permute_heads(flip_value_signs(BASE, np.random.default_rng(1)), np.random.default_rng(2))
    assert np.allclose(mla_attention(moved, 1, x), before, atol=1e-9)
    key_flipped = dict(BASE)
    name = "model.layers.1.self_attn.kv_b_proj.weight"
    key_flipped[name] = BASE[name].copy()
    key_flipped[name][0] *= -1  # head 0's first key row
    assert not np.allclose(mla_attention(key_flipped, 1, x), before, atol=1e-6)
    value_only = dict(BASE)
    value_only[name] = BASE[name].copy()
    value_only[name][SHAPE.nope] *= -1  # head 0's first value row, o_proj column left alone
    assert not np.allclose(mla_attention(value_only, 1, x), before, atol=1e-6)


def test_the_residual_rotation_used_below_preserves_the_attention() -> None:
    """``rotate_mla_residual`` is a symmetry: in the rotated basis the attention block computes the
    same output, rotated (RMSNorm ignores the order and signs of the residual coordinates)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, SHAPE.hidden))
    rotated = rotate_mla_residual(BASE, np.random.default_rng(5))
    again = np.random.default_rng(5)  # the same permutation and signs, drawn again
    perm = again.permutation(SHAPE.hidden)
    signs = again.choice([-1.0, 1.0], SHAPE.hidden)
    before = mla_attention(BASE, 1, x)
    after = mla_attention(rotated, 1, x[:, perm] * signs)
    assert np.allclose(after, before[:, perm] * signs, atol=1e-6)


def test_the_fingerprint_keeps_composed_value_rows_that_flip_with_the_coin(
    model_factory, tmp_path: Path
) -> None:
    fp = _fp(write_mla_model(tmp_path / "a", BASE))
    assert [sample.layer for sample in fp.attention] == [0, 1, 2]
    assert fp.header["value_geometry"] == [SHAPE.heads, SHAPE.v_dim]
    sample = fp.attention[1]
    assert sample.rows_total == SHAPE.heads * SHAPE.v_dim and sample.tensor.endswith("kv_b_proj.weight")
    # The kept rows are the composed value map's: w_v . diag(g_kv) . W_kv_a[:kv_lora] . diag(g_in), in the
    # token frame of the anchor embeddings.
    p = "model.layers.1."
    geometry = MlaGeometry(SHAPE.heads, SHAPE.nope, SHAPE.v_dim, SHAPE.kv_lora)
    w_v = BASE[p + "self_attn.kv_b_proj.weight"][geometry.tensor_rows(sample.unit_rows)]
    latent = BASE[p + "self_attn.kv_a_proj_with_mqa.weight"][: SHAPE.kv_lora]
    composed = (
        (w_v * BASE[p + "self_attn.kv_a_layernorm.weight"]) @ latent * BASE[p + "input_layernorm.weight"]
    )
    frame = BASE["model.embed_tokens.weight"][[row for row, _ in fp.anchors]]
    assert np.allclose(sample.value, composed @ frame.T, rtol=1e-4, atol=1e-5)
    flipped = _fp(write_mla_model(tmp_path / "b", flip_value_signs(BASE, np.random.default_rng(4))))
    ratio = flipped.attention[1].value / sample.value
    assert np.allclose(np.abs(ratio), 1, atol=1e-3) and (ratio < 0).any() and (ratio > 0).any()


def test_value_rows_are_not_guessed_without_the_head_layout() -> None:
    shapes = {
        "model.layers.0.self_attn.kv_b_proj.weight": (56, 16),
        "model.layers.0.self_attn.kv_a_proj_with_mqa.weight": (20, 48),
        "model.layers.0.self_attn.o_proj.weight": (48, 32),
    }
    tensors = {name: TensorInfo(name, shape, "F32", 0, "x") for name, shape in shapes.items()}
    assert find_mla_values(tensors, 48, None) == ()
    assert mla_geometry({"model_type": "deepseek_v3", "num_attention_heads": 4}) is None
    wrong = MlaGeometry(heads=4, nope=8, v_dim=6, kv_lora=16)  # same kv_b rows (56), o_proj disagrees
    assert find_mla_values(tensors, 48, wrong) == ()
    right = MlaGeometry(heads=4, nope=6, v_dim=8, kv_lora=16)
    assert [v.layer for v in find_mla_values(tensors, 48, right)] == [0]


def test_fine_tuned_mla_child_gets_both_exact_tests(
    base_fp: Fingerprint, model_factory, tmp_path: Path
) -> None:
    """Expert MLPs (routed and shared) feed the fixed-point and unit-sign tests as for any MoE model,
    and the kv_b_proj value rows the value-sign test."""
    child = _fp(write_mla_model(tmp_path / "tuned", fine_tune(BASE, np.random.default_rng(3), scale=0.2)))
    experts = {block.expert for block in child.blocks}
    assert SHARED_EXPERT in experts and {0, 1, 2, 3} <= experts and None in experts
    result = compare_fingerprints(child, base_fp)
    assert result.verdict == "related" and result.layer_map == {"0": 0, "1": 1, "2": 2}
    assert {"fixed-points", "unit-signs", "value-signs"} <= set(result.paths_tried)
    values = result.value_signs
    assert values["positive_signs"] == values["matched_dimensions"] > 60 and values["log10_p"] < -20


def test_mla_child_with_permuted_and_flipped_units_is_found_by_value_signs(
    base_fp: Fingerprint, tmp_path: Path
) -> None:
    """MLP units (dense, routed and shared experts) permuted *and* sign-flipped, and heads permuted: the
    MLP tests have no power left; the kv_b_proj value rows still carry the base's coins."""
    moved = permute_heads(
        permute_and_flip_units(
            fine_tune(BASE, np.random.default_rng(9), scale=0.2), np.random.default_rng(5)
        ),
        np.random.default_rng(7),
    )
    result = compare_fingerprints(_fp(write_mla_model(tmp_path / "moved", moved)), base_fp)
    # The residual basis is untouched, so the residual-dimension test may give the final p; the
    # value-sign test must find the copy on its own.
    assert result.verdict == "related" and result.p_value_test in ("value-signs", "residual-dims")
    assert result.unit_signs["agreement"] < 0.7
    values = result.value_signs
    assert values["positive_signs"] == values["matched_dimensions"] > 60
    assert values["null"] == {"distribution": "binomial", "n": values["matched_dimensions"], "p": 0.5}
    assert values["log10_p"] < -15


def test_value_signs_flipped_too_are_not_claimed(base_fp: Fingerprint, tmp_path: Path) -> None:
    """Every symmetry applied (units permuted and flipped, heads permuted, value dimensions flipped,
    the residual stream permuted and flipped): no exact test has power, and the engine must not
    invent evidence."""
    rng = np.random.default_rng(11)
    everything = rotate_mla_residual(
        flip_value_signs(permute_heads(permute_and_flip_units(BASE, rng), rng), rng), rng
    )
    result = compare_fingerprints(_fp(write_mla_model(tmp_path / "all", everything)), base_fp)
    assert result.verdict == "unrelated"


def _independent_value_p(tmp_path: Path, pairs: int, value_coins: bool) -> tuple[np.ndarray, np.ndarray]:
    """Value-sign p-values and final p-values of ``pairs`` independent pairs of MLA models."""
    params = (make_mla_params(200 + i, universal=0.3, value_coins=value_coins) for i in range(2 * pairs))
    fps = [_fp(write_mla_model(tmp_path / f"m{i}", p)) for i, p in enumerate(params)]
    results = [compare_fingerprints(fps[2 * i], fps[2 * i + 1]) for i in range(pairs)]
    assert all(r.value_signs is not None for r in results)
    return np.array([10 ** r.value_signs["log10_p"] for r in results]), np.array([r.p_value for r in results])


def test_value_sign_p_values_are_uniform_on_independent_mla_pairs(tmp_path: Path) -> None:
    """Independent MLA models sharing 'training data' (token structure, universal MLP, latent and value
    features): the value-sign p-values must be uniform (Kolmogorov-Smirnov) and false positives at
    alpha = 0.05 within the binomial 99.9 % bound."""
    pairs = 30
    value_p, p_values = _independent_value_p(tmp_path, pairs, value_coins=True)
    assert stats.kstest(value_p, "uniform").pvalue > 0.001
    assert int(np.sum(p_values < 0.05)) <= stats.binom.ppf(0.999, pairs, 0.05)


def test_the_null_check_fails_when_value_signs_are_not_coins(tmp_path: Path) -> None:
    """The same independent pairs with every value sign +1 (no coins): the shared value features then
    agree in sign across models and the uniformity check above must reject, so it can fail."""
    value_p, _ = _independent_value_p(tmp_path, 12, value_coins=False)
    assert stats.kstest(value_p, "uniform").pvalue < 1e-6
