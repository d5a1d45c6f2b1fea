"""GPT-NeoX / Pythia: ``gpt_neox.embed_in`` is the input embedding and ``embed_out`` the output head.

The tiny model is written with the tensor names transformers' ``GPTNeoXForCausalLM`` saves (older
Pythia files also hold the causal-mask buffers ``attention.bias`` / ``attention.masked_bias`` and the
rotary ``inv_freq``: bytes, not parameters). Pythia-70M's sizes are those of EleutherAI/pythia-70m's
config.json; its parameter counts are the Pythia paper's (Biderman et al. 2023, Table 1: 70,426,624
in all, 18,915,328 without the embedding and the unembedding).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modeltrace import api
from modeltrace.inspect.card import card_from_config

TINY = {"vocab": 96, "hidden": 16, "inner": 64, "layers": 2, "heads": 4, "positions": 32}

PYTHIA_70M_CONFIG = {
    "architectures": ["GPTNeoXForCausalLM"],
    "bos_token_id": 0,
    "eos_token_id": 0,
    "hidden_act": "gelu",
    "hidden_size": 512,
    "initializer_range": 0.02,
    "intermediate_size": 2048,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 2048,
    "model_type": "gpt_neox",
    "num_attention_heads": 8,
    "num_hidden_layers": 6,
    "rotary_emb_base": 10000,
    "rotary_pct": 0.25,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "use_cache": True,
    "use_parallel_residual": True,
    "vocab_size": 50304,
}


def _gpt_neox_tensors(vocab: int, hidden: int, inner: int, layers: int, heads: int, positions: int) -> dict:
    rng = np.random.default_rng(0)

    def weight(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    tensors = {"gpt_neox.embed_in.weight": weight(vocab, hidden)}
    for index in range(layers):
        prefix = f"gpt_neox.layers.{index}"
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors[f"{prefix}.{norm}.weight"], tensors[f"{prefix}.{norm}.bias"] = (
                weight(hidden),
                weight(hidden),
            )
        # Buffers older Pythia checkpoints saved along with the weights.
        tensors[f"{prefix}.attention.bias"] = np.tril(np.ones((1, 1, positions, positions), dtype=bool))
        tensors[f"{prefix}.attention.masked_bias"] = np.array(-1e9, dtype=np.float32)
        tensors[f"{prefix}.attention.rotary_emb.inv_freq"] = weight(hidden // heads // 8)
        for name, out_f, in_f in (("attention.query_key_value", 3 * hidden, hidden),
                                  ("attention.dense", hidden, hidden), ("mlp.dense_h_to_4h", inner, hidden),
                                  ("mlp.dense_4h_to_h", hidden, inner)):  # fmt: skip
            tensors[f"{prefix}.{name}.weight"], tensors[f"{prefix}.{name}.bias"] = (
                weight(out_f, in_f),
                weight(out_f),
            )
    tensors["gpt_neox.final_layer_norm.weight"] = weight(hidden)
    tensors["gpt_neox.final_layer_norm.bias"] = weight(hidden)
    tensors["embed_out.weight"] = weight(vocab, hidden)
    return tensors


@pytest.fixture
def tiny_gpt_neox(tmp_path: Path) -> Path:
    size = TINY
    save_file(_gpt_neox_tensors(**size), str(tmp_path / "model.safetensors"))
    config = {**PYTHIA_70M_CONFIG, "hidden_size": size["hidden"], "intermediate_size": size["inner"],
              "num_hidden_layers": size["layers"], "num_attention_heads": size["heads"],
              "max_position_embeddings": size["positions"], "vocab_size": size["vocab"]}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_embed_in_is_the_embedding_and_embed_out_the_head(tiny_gpt_neox: Path) -> None:
    vocab, hidden, inner, layers = TINY["vocab"], TINY["hidden"], TINY["inner"], TINY["layers"]
    # two LayerNorms (weight and bias each), then query-key-value, dense and the MLP, each with a bias
    per_layer = 4 * hidden + 3 * hidden * (hidden + 1) + hidden * (hidden + 1)
    per_layer += inner * (hidden + 1) + hidden * (inner + 1)
    card = api.inspect(tiny_gpt_neox)
    assert card["embedding_params"] == vocab * hidden
    assert card["head_params"] == vocab * hidden
    # The mask and rotary buffers are not parameters.
    assert card["total_params"] == 2 * vocab * hidden + layers * per_layer + 2 * hidden
    assert card["active_params_excluding_embeddings"] == layers * per_layer + 2 * hidden
    assert (card["layers"], card["hidden_size"], card["vocab_size"]) == (layers, hidden, vocab)
    # config.json's layout is exact for gpt_neox: it names and counts the same tensors.
    assert card["config_total_params"] == card["total_params"]
    assert not [note for note in card["notes"] if "config" in note], card["notes"]


def test_pythia_70m_config_counts_the_papers_figures() -> None:
    card = card_from_config(PYTHIA_70M_CONFIG)
    assert card.total_params == 70_426_624
    assert card.embedding_params == card.head_params == 50304 * 512
    assert card.active_params_excluding_embeddings == 18_915_328
    assert not card.notes  # a layout checked against the checkpoint names, not a guess from fields


def test_tied_gpt_neox_has_no_separate_head() -> None:
    card = card_from_config({**PYTHIA_70M_CONFIG, "tie_word_embeddings": True})
    assert card.head_params == 0 and card.total_params == 70_426_624 - 50304 * 512
