"""Parameter counts from tensor lists (names and shapes only) against counts worked out by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modeltrace.errors import FormatError, ResourceLimitError
from modeltrace.inspect.card import card_from_config, card_from_tensors
from modeltrace.inspect.layouts import config_tensor_shapes
from modeltrace.types import TensorInfo


def infos(shapes: dict[str, tuple[int, ...]], dtype: str = "F16", itemsize: int = 2) -> list[TensorInfo]:
    return [
        TensorInfo(name, shape, dtype, math.prod(shape) * itemsize, "f") for name, shape in shapes.items()
    ]


def layout(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    laid_out = config_tensor_shapes(config)
    assert laid_out is not None
    return laid_out[0]


def llama_config(hidden: int, layers: int, heads: int, kv: int, inner: int, vocab: int, tie: bool) -> dict:
    return {
        "model_type": "llama", "hidden_size": hidden, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv, "intermediate_size": inner,
        "vocab_size": vocab, "tie_word_embeddings": tie, "max_position_embeddings": 512,
    }  # fmt: skip


def llama_params(hidden: int, layers: int, heads: int, kv: int, inner: int, vocab: int, tie: bool) -> int:
    head_dim = hidden // heads
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv * head_dim
    per_layer = attention + 3 * hidden * inner + 2 * hidden
    return vocab * hidden * (1 if tie else 2) + layers * per_layer + hidden


@settings(max_examples=40, deadline=None)
@given(
    heads=st.integers(1, 8),
    head_dim=st.integers(1, 8),
    kv_divisor=st.integers(1, 8),
    layers=st.integers(1, 4),
    inner=st.integers(1, 64),
    vocab=st.integers(1, 300),
    tie=st.booleans(),
)
def test_dense_llama_count_matches_formula(
    heads: int, head_dim: int, kv_divisor: int, layers: int, inner: int, vocab: int, tie: bool
) -> None:
    kv = max(1, heads // kv_divisor)
    dims = (heads * head_dim, layers, heads, kv, inner, vocab, tie)
    config = llama_config(*dims)
    from_tensors = card_from_tensors(infos(layout(config)), config)
    assert from_tensors.total_params == llama_params(*dims)
    assert from_tensors.active_params == from_tensors.total_params
    assert card_from_config(config).total_params == from_tensors.total_params
    assert from_tensors.total_bytes == 2 * from_tensors.total_params


def qwen_moe_config(experts: int, per_token: int, layers: int = 2) -> dict:
    return {
        "model_type": "qwen3_moe", "hidden_size": 32, "num_hidden_layers": layers, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 8, "intermediate_size": 48, "moe_intermediate_size": 16,
        "num_experts": experts, "num_experts_per_tok": per_token, "vocab_size": 100,
    }  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(experts=st.integers(1, 12), data=st.data())
def test_moe_active_count_matches_formula(experts: int, data: st.DataObject) -> None:
    per_token = data.draw(st.integers(1, experts))
    config = qwen_moe_config(experts, per_token)
    hidden, layers, expert_params = 32, 2, 3 * 32 * 16
    attention = 2 * 32 * 32 + 2 * 32 * 16 + 2 * 8  # q, o; k, v; q_norm, k_norm
    shared_per_layer = attention + 2 * hidden + experts * hidden  # + norms + router
    total = 2 * 100 * hidden + hidden + layers * (shared_per_layer + experts * expert_params)
    active = total - layers * (experts - per_token) * expert_params
    card = card_from_tensors(infos(layout(config)), config)
    assert (card.total_params, card.active_params) == (total, active)
    assert card.experts is not None
    assert (card.experts.routed, card.experts.per_token, card.experts.moe_layers) == (experts, per_token, 2)
    assert card.experts.params_per_expert == expert_params
    assert card.activation_rate == pytest.approx(active / total)


def test_mixtral_experts_are_found_by_block_sparse_moe_names() -> None:
    config = {
        "model_type": "mixtral", "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 1, "intermediate_size": 24, "num_local_experts": 8, "num_experts_per_tok": 2,
        "vocab_size": 50,
    }  # fmt: skip
    shapes = layout(config)
    assert "model.layers.1.block_sparse_moe.experts.7.w2.weight" in shapes
    card = card_from_tensors(infos(shapes), config)
    assert card.experts is not None and card.experts.routed == 8
    assert card.total_params - card.active_params == 2 * 6 * (3 * 16 * 24)  # 6 idle experts per layer


def gpt_oss_config() -> dict:
    return {
        "model_type": "gpt_oss", "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 4, "intermediate_size": 8, "num_local_experts": 4,
        "num_experts_per_tok": 1, "vocab_size": 40, "attention_bias": True,
    }  # fmt: skip


def test_gpt_oss_fused_experts_count_per_expert() -> None:
    config = gpt_oss_config()
    card = card_from_tensors(infos(layout(config)), config)
    per_expert = 16 * 2 * 8 + 2 * 8 + 8 * 16 + 16  # gate_up + its bias + down + its bias
    attention = 16 * 16 + 16 + 2 * (16 * 8 + 8) + 16 * 16 + 16 + 4  # q, k, v, o with biases; sinks
    per_layer = attention + 2 * 16 + (4 * 16 + 4) + 4 * per_expert  # norms, router + bias, experts
    assert card.total_params == 2 * 40 * 16 + 16 + 2 * per_layer
    assert card.active_params == card.total_params - 2 * 3 * per_expert
    assert card.experts is not None and card.experts.routed == 4


def test_gpt_oss_mxfp4_blocks_count_two_values_per_byte_and_scales_are_not_parameters() -> None:
    config = gpt_oss_config()
    shapes = layout(config)
    quantised: list[TensorInfo] = []
    for info in infos(shapes, "BF16"):
        if info.name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            experts, rows, cols = info.shape
            # MXFP4 as gpt-oss ships it: 32-value blocks of 16 bytes plus one scale byte per block
            blocks = (experts, cols * rows // 32, 16)
            quantised.append(TensorInfo(info.name + "_blocks", blocks, "U8", math.prod(blocks), "f"))
            scales = (experts, cols * rows // 32)
            quantised.append(TensorInfo(info.name + "_scales", scales, "U8", math.prod(scales), "f"))
        else:
            quantised.append(info)
    dense = card_from_tensors(infos(shapes), config)
    packed = card_from_tensors(quantised, config)
    assert packed.total_params == dense.total_params
    assert packed.active_params == dense.active_params
    assert packed.dtypes["U8"] == 8
    assert packed.total_bytes < dense.total_bytes


def test_fp8_scale_tensors_count_bytes_but_not_parameters() -> None:
    weights = {"model.embed_tokens.weight": (64, 16), "model.layers.0.mlp.up_proj.weight": (256, 256)}
    stored = infos(weights, "F8_E4M3", 1)
    stored.append(TensorInfo("model.layers.0.mlp.up_proj.weight_scale_inv", (2, 2), "F32", 16, "f"))
    card = card_from_tensors(stored)
    assert card.total_params == 64 * 16 + 256 * 256
    assert card.total_bytes == 64 * 16 + 256 * 256 + 16
    assert card.tensor_count == 3
    assert card.dtypes == {"F8_E4M3": 2, "F32": 1}


def deepseek_config(mtp: int) -> dict:
    return {
        "model_type": "deepseek_v3", "hidden_size": 32, "num_hidden_layers": 3, "first_k_dense_replace": 1,
        "num_attention_heads": 4, "num_key_value_heads": 4, "q_lora_rank": 16, "kv_lora_rank": 8,
        "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8, "intermediate_size": 64,
        "moe_intermediate_size": 8, "n_routed_experts": 6, "n_shared_experts": 1, "num_experts_per_tok": 2,
        "num_nextn_predict_layers": mtp, "topk_method": "noaux_tc", "vocab_size": 100,
    }  # fmt: skip


def test_deepseek_mtp_layer_is_excluded_from_totals_and_reported() -> None:
    without, with_mtp = deepseek_config(0), deepseek_config(1)
    from_tensors = card_from_tensors(infos(layout(with_mtp)), with_mtp)
    assert from_tensors.total_params == card_from_config(without).total_params
    assert from_tensors.active_params == card_from_config(without).active_params
    assert from_tensors.mtp_params and from_tensors.mtp_params == card_from_config(with_mtp).mtp_params
    assert from_tensors.dims.layers == 3
    assert from_tensors.experts is not None
    assert (from_tensors.experts.moe_layers, from_tensors.experts.shared) == (2, 1)


def test_deepseek_shared_experts_and_router_stay_active() -> None:
    config = deepseek_config(0)
    card = card_from_tensors(infos(layout(config)), config)
    expert = 3 * 32 * 8
    assert card.total_params - card.active_params == 2 * (6 - 2) * expert


@pytest.mark.parametrize("expert_axis_first", [True, False])
def test_gguf_stacked_experts_with_metadata(expert_axis_first: bool) -> None:
    """GGUF keeps every expert of a block in one tensor; the expert axis is found by its size."""

    def shape(experts: int, rows: int, cols: int) -> tuple[int, ...]:
        return (experts, rows, cols) if expert_axis_first else (cols, rows, experts)

    shapes = {"token_embd.weight": (50, 16), "output_norm.weight": (16,), "output.weight": (50, 16)}
    for block in range(3):
        shapes |= {
            f"blk.{block}.attn_norm.weight": (16,),
            f"blk.{block}.attn_q.weight": (16, 16),
            f"blk.{block}.ffn_gate_inp.weight": (16, 8),
            f"blk.{block}.ffn_gate_exps.weight": shape(8, 12, 16),
            f"blk.{block}.ffn_up_exps.weight": shape(8, 12, 16),
            f"blk.{block}.ffn_down_exps.weight": shape(8, 16, 12),
        }
    metadata = {
        "general.architecture": "qwen3moe", "qwen3moe.block_count": 3, "qwen3moe.embedding_length": 16,
        "qwen3moe.attention.head_count": 4, "qwen3moe.attention.head_count_kv": 2,
        "qwen3moe.context_length": 1024, "qwen3moe.expert_count": 8, "qwen3moe.expert_used_count": 2,
    }  # fmt: skip
    card = card_from_tensors(infos(shapes), None, metadata)
    total = 2 * 50 * 16 + 16 + 3 * (16 + 256 + 128 + 8 * 3 * 12 * 16)
    assert card.total_params == total
    assert card.active_params == total - 3 * 6 * (3 * 12 * 16)
    assert (card.dims.layers, card.dims.hidden_size, card.dims.context_length) == (3, 16, 1024)
    assert card.family == "qwen-moe"
    assert card.experts is not None and card.experts.routed == 8


def test_without_config_or_metadata_sizes_come_from_the_tensors() -> None:
    config = llama_config(32, 3, 4, 2, 48, 200, False)
    card = card_from_tensors(infos(layout(config)))
    assert (card.dims.layers, card.dims.hidden_size, card.dims.vocab_size) == (3, 32, 200)
    assert card.total_params == llama_params(32, 3, 4, 2, 48, 200, False)
    assert card.dims.architecture is None


def test_config_and_weights_disagreeing_is_reported() -> None:
    config = llama_config(32, 3, 4, 2, 48, 200, False)
    fewer_layers = {name: shape for name, shape in layout(config).items() if ".layers.2." not in name}
    card = card_from_tensors(infos(fewer_layers), config)
    assert card.config_total_params == llama_params(32, 3, 4, 2, 48, 200, False)
    assert card.total_params == llama_params(32, 2, 4, 2, 48, 200, False)
    assert any("config.json implies" in note for note in card.notes)


def test_unknown_experts_per_token_leaves_active_unknown() -> None:
    config = qwen_moe_config(4, 2)
    card = card_from_tensors(infos(layout(config)))  # no config: names show experts, nothing says k
    assert card.active_params is None
    assert card.activation_rate is None
    assert any("experts-per-token unknown" in note for note in card.notes)


def test_unknown_model_type_is_laid_out_from_its_fields_and_flagged() -> None:
    config = llama_config(32, 2, 4, 4, 48, 100, True) | {"model_type": "somethingnew"}
    card = card_from_config(config)
    assert card.total_params == llama_params(32, 2, 4, 4, 48, 100, True)
    assert any("laid out from the config's fields" in note for note in card.notes)


def test_config_without_sizes_gives_no_count() -> None:
    card = card_from_config({"model_type": "mystery"})
    assert card.total_params is None and card.active_params is None
    assert card.notes


@pytest.mark.parametrize("value", ["4096", -1, 1.5, True, 10**12])
def test_bad_config_values_are_format_errors(value: object) -> None:
    config = llama_config(32, 2, 4, 4, 48, 100, True) | {"hidden_size": value}
    with pytest.raises(FormatError, match="hidden_size"):
        card_from_config(config)


def test_config_implying_too_many_tensors_is_refused() -> None:
    config = qwen_moe_config(experts=1_000_000, per_token=2, layers=1000)
    with pytest.raises(ResourceLimitError):
        card_from_config(config)


@pytest.mark.parametrize(
    ("head", "embedding"),
    [
        ("lm_head.weight", "model.embed_tokens.weight"),  # Hugging Face
        ("output.weight", "token_embd.weight"),  # GGUF
        ("transformer.output_layer.weight", "transformer.embedding.word_embeddings.weight"),  # ChatGLM
        ("embed_out.weight", "model.embed_tokens.weight"),  # GPT-NeoX's head name
        ("language_model.lm_head.weight", "language_model.model.embed_tokens.weight"),  # multimodal wrapper
    ],
)
def test_output_head_is_found_by_name_and_subtracted_only_in_the_makers_conventions(
    head: str, embedding: str
) -> None:
    shapes = {embedding: (50, 16), "model.layers.0.mlp.up_proj.weight": (24, 16), head: (50, 16)}
    card = card_from_tensors(infos(shapes))
    assert card.total_params == card.active_params == 2 * 50 * 16 + 24 * 16
    assert card.head_params == 50 * 16
    assert card.embedding_params == 50 * 16
    assert card.active_params_excluding_input_embedding == card.active_params - 50 * 16
    assert card.active_params_excluding_embeddings == card.active_params - 2 * 50 * 16


def test_tied_embeddings_have_no_head_to_subtract() -> None:
    tied, untied = (llama_config(16, 1, 4, 2, 24, 50, tie) for tie in (True, False))
    tied_card, untied_card = card_from_config(tied), card_from_config(untied)
    assert (tied_card.head_params, untied_card.head_params) == (0, 50 * 16)
    assert tied_card.active_params_excluding_embeddings == tied_card.active_params - 50 * 16
    assert untied_card.active_params_excluding_embeddings == untied_card.active_params - 2 * 50 * 16
    # The MTP module's own head (shared_head.head) stays in mtp_params, not in head_params.
    mtp = card_from_tensors(infos(layout(deepseek_config(1))), deepseek_config(1))
    assert mtp.head_params == 100 * 32
