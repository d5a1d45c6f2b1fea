"""Weight transforms: the symmetric ones preserve the function exactly, the others do what they say.

Models here are random initialisations with weights scaled up so the functions are far from
trivial (near-uniform logits would hide a broken transform).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from modeltrace.zoo import transforms
from modeltrace.zoo.arch import ArchConfig, Params, init_params, parameter_shapes
from modeltrace.zoo.network import numpy_logits

CONFIG = ArchConfig("llama", vocab_size=50, hidden_size=32, intermediate_size=48, num_layers=3,
                    num_heads=4, num_kv_heads=2, max_positions=16)  # fmt: skip
TOKENS = np.random.default_rng(5).integers(0, CONFIG.vocab_size, (3, 16))


@pytest.fixture
def params() -> Params:
    rng = np.random.default_rng(1)
    out = {}
    for name, value in init_params(CONFIG, seed=3).items():
        # distinct norm gains (ones would hide a permutation bug) and strong weights
        out[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32) if value.ndim == 1 else value * 15
    return out


def _max_difference(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.abs(first - second).max())


@pytest.mark.parametrize(
    "transform",
    [transforms.permute_mlp_units, transforms.permute_heads, transforms.permute_residual, transforms.rescale],
)
def test_symmetric_transforms_preserve_logits_and_change_weights(params: Params, transform) -> None:
    reference = numpy_logits(params, CONFIG, TOKENS)
    assert reference.std() > 1.0  # the function is far from trivial
    changed = transform(params, CONFIG, np.random.default_rng(0))
    assert changed.keys() == params.keys()
    assert all(changed[name].shape == params[name].shape for name in params)
    assert _max_difference(numpy_logits(changed, CONFIG, TOKENS), reference) < 1e-4
    moved = [name for name in params if not np.array_equal(changed[name], params[name])]
    assert len(moved) >= CONFIG.num_layers * 2  # e.g. q_proj and o_proj of every layer


def test_residual_transform_flips_signs_and_permutes(params: Params) -> None:
    changed = transforms.permute_residual(params, CONFIG, np.random.default_rng(0))
    embed, new_embed = params["model.embed_tokens.weight"], changed["model.embed_tokens.weight"]
    # every new column is +- an old column, and some are negated
    correlation = (new_embed.T @ embed) / np.outer(
        np.linalg.norm(new_embed, axis=0), np.linalg.norm(embed, axis=0)
    )
    best = correlation[np.arange(CONFIG.hidden_size), np.abs(correlation).argmax(1)]
    np.testing.assert_allclose(np.abs(best), 1.0, atol=1e-6)
    assert (best < 0).any() and (best > 0).any()


def test_rescale_folds_norm_gains(params: Params) -> None:
    changed = transforms.rescale(params, CONFIG, np.random.default_rng(0))
    gains = [name for name in changed if name.endswith("norm.weight")]
    assert gains and all(np.array_equal(changed[name], np.ones_like(changed[name])) for name in gains)


def test_reordered_vocabulary_keeps_each_token_string_function(params: Params) -> None:
    vocab = [f"w{index}" for index in range(CONFIG.vocab_size)]
    order = np.random.default_rng(2).permutation(CONFIG.vocab_size)
    changed, config, new_vocab = transforms.select_tokens(params, CONFIG, vocab, order)
    new_id = {token: index for index, token in enumerate(new_vocab)}
    remapped_tokens = np.vectorize(lambda old: new_id[vocab[old]])(TOKENS)
    new_logits = numpy_logits(changed, config, remapped_tokens)
    # logit of token string t is the same in both models
    back = np.array([new_id[token] for token in vocab])
    assert _max_difference(new_logits[..., back], numpy_logits(params, CONFIG, TOKENS)) < 1e-4


def test_pruned_and_extended_vocabularies_keep_the_surviving_rows(params: Params) -> None:
    vocab = [f"w{index}" for index in range(CONFIG.vocab_size)]
    keep = np.arange(0, CONFIG.vocab_size, 2)
    pruned, config, pruned_vocab = transforms.select_tokens(params, CONFIG, vocab, keep)
    assert config.vocab_size == len(pruned_vocab) == 25 and pruned_vocab[1] == "w2"
    np.testing.assert_array_equal(pruned["lm_head.weight"][1], params["lm_head.weight"][2])
    grown, config, grown_vocab = transforms.extend_vocab(
        params, CONFIG, vocab, ["new1", "new2"], np.random.default_rng(0)
    )
    assert grown_vocab[-2:] == ["new1", "new2"] and grown["model.embed_tokens.weight"].shape == (52, 32)
    np.testing.assert_array_equal(
        grown["model.embed_tokens.weight"][:50], params["model.embed_tokens.weight"]
    )
    with pytest.raises(Exception, match="already has"):
        transforms.extend_vocab(params, CONFIG, vocab, ["w3"], np.random.default_rng(0))


def test_select_layers_with_every_layer_in_order_is_the_identity(params: Params) -> None:
    same, config, layer_map = transforms.select_layers(params, CONFIG, [0, 1, 2])
    assert layer_map == {0: 0, 1: 1, 2: 2}
    assert _max_difference(numpy_logits(same, config, TOKENS), numpy_logits(params, CONFIG, TOKENS)) == 0


def test_duplicated_layers_copy_weights_and_report_the_map(params: Params) -> None:
    deeper, config, layer_map = transforms.select_layers(params, CONFIG, [0, 1, 1, 2])
    assert config.num_layers == 4 and layer_map == {0: 0, 1: 1, 2: 1, 3: 2}
    assert list(deeper) == list(parameter_shapes(config))
    np.testing.assert_array_equal(
        deeper["model.layers.2.mlp.up_proj.weight"], params["model.layers.1.mlp.up_proj.weight"]
    )
    with pytest.raises(Exception, match="does not fit"):
        transforms.select_layers(params, CONFIG, [0, 3])


def test_width_pruning_keeps_the_largest_units_in_order(params: Params) -> None:
    pruned, config = transforms.prune_mlp_width(params, CONFIG, keep_fraction=0.5)
    assert config.intermediate_size == 24
    up = params["model.layers.0.mlp.up_proj.weight"]
    down = params["model.layers.0.mlp.down_proj.weight"]
    importance = np.linalg.norm(up, axis=1) * np.linalg.norm(down, axis=0)
    kept = np.sort(np.argsort(-importance)[:24])
    np.testing.assert_array_equal(pruned["model.layers.0.mlp.up_proj.weight"], up[kept])


def test_upcycled_moe_computes_the_dense_function_before_training(params: Params) -> None:
    moe, config = transforms.upcycle_to_moe(params, CONFIG, experts=4, rng=np.random.default_rng(0))
    assert config.num_experts == 4 and config.hf_config()["model_type"] == "mixtral"
    assert list(moe) == list(parameter_shapes(config))
    assert _max_difference(numpy_logits(moe, config, TOKENS), numpy_logits(params, CONFIG, TOKENS)) < 1e-4


def test_average_is_the_elementwise_mean(params: Params) -> None:
    other = {name: value + 1 for name, value in params.items()}
    merged = transforms.average([params, other])
    np.testing.assert_allclose(merged["lm_head.weight"], params["lm_head.weight"] + 0.5, atol=1e-6)
