"""Architecture cards for model_types no table knows, derived from the config's fields.

DeepSeek-V3.2 (``deepseek_v32``) and GLM-5 (``glm_moe_dsa``) are built here from their published
config.json fields: DeepSeek-V3.2-Exp's ``config.json`` (vendored in huggingface/transformers at
``src/transformers/models/deepseek_v32/deepseek_files/config.json``) and GLM-5's (zai-org/GLM-5; the
same values are transformers' ``GlmMoeDsaConfig`` defaults and xLLM's ``glm5.h`` loader defaults).
The real configs of tests/data/configs/ are checked too, under a model_type no table knows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from modeltrace.errors import ResourceLimitError
from modeltrace.inspect.card import card_from_config, card_from_tensors
from modeltrace.inspect.layouts import config_tensor_shapes
from modeltrace.types import TensorInfo

B = 1e9
CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"

DEEPSEEK_V32 = {
    "architectures": ["DeepseekV32ForCausalLM"], "model_type": "deepseek_v32", "attention_bias": False,
    "first_k_dense_replace": 3, "hidden_act": "silu", "hidden_size": 7168, "index_head_dim": 128,
    "index_n_heads": 64, "index_topk": 2048, "intermediate_size": 18432, "kv_lora_rank": 512,
    "max_position_embeddings": 163840, "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8,
    "n_routed_experts": 256, "n_shared_experts": 1, "norm_topk_prob": True, "num_attention_heads": 128,
    "num_experts_per_tok": 8, "num_hidden_layers": 61, "num_key_value_heads": 128,
    "num_nextn_predict_layers": 1, "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
    "tie_word_embeddings": False, "topk_group": 4, "topk_method": "noaux_tc", "v_head_dim": 128,
    "vocab_size": 129280,
}  # fmt: skip
GLM_5 = {
    "architectures": ["GlmMoeDsaForCausalLM"], "model_type": "glm_moe_dsa", "attention_bias": False,
    "first_k_dense_replace": 3, "head_dim": 64, "hidden_act": "silu", "hidden_size": 6144,
    "index_head_dim": 128, "index_n_heads": 32, "index_topk": 2048, "intermediate_size": 12288,
    "kv_lora_rank": 512, "max_position_embeddings": 202752, "moe_intermediate_size": 2048,
    "moe_layer_freq": 1, "n_group": 1, "n_routed_experts": 256, "n_shared_experts": 1,
    "norm_topk_prob": True, "num_attention_heads": 64, "num_experts_per_tok": 8, "num_hidden_layers": 78,
    "num_key_value_heads": 64, "num_nextn_predict_layers": 1, "q_lora_rank": 2048, "qk_head_dim": 256,
    "qk_nope_head_dim": 192, "qk_rope_head_dim": 64, "tie_word_embeddings": False,
    "topk_method": "noaux_tc", "v_head_dim": 256, "vocab_size": 154880,
}  # fmt: skip
#: GLM-4.5 ("355B total, 32B active"), from the Megatron arguments that mirror its config.json
#: (zyzshishui/slime scripts/models/glm4.5-355B-A32B.sh): a second Z.ai model to pin Z.ai's convention.
GLM_45 = {
    "model_type": "glm4_moe", "hidden_size": 5120, "num_hidden_layers": 92, "num_attention_heads": 96,
    "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 12288, "moe_intermediate_size": 1536,
    "n_routed_experts": 160, "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
    "vocab_size": 151552, "attention_bias": True, "use_qk_norm": True, "num_nextn_predict_layers": 1,
    "tie_word_embeddings": False,
}  # fmt: skip


def _renamed(config: dict, model_type: str) -> dict:
    text = dict(config.get("text_config", config), model_type=model_type)
    return dict(config, text_config=text) if "text_config" in config else text


def test_deepseek_v32_is_671b_with_deepseeks_37b_active() -> None:
    card = card_from_config(DEEPSEEK_V32)
    assert card.total_params == pytest.approx(671 * B, rel=0.02)
    # DeepSeek's "37B activated" leaves the input embedding out: the same convention puts V3
    # (37.55 B with it, 36.62 B without) and V3.2 (V3 plus a 0.85 B indexer) both within 2 %.
    assert card.active_params - card.embedding_params == pytest.approx(37 * B, rel=0.02)
    v3 = card_from_config(json.loads((CONFIGS / "deepseek-v3.json").read_text()))
    assert v3.active_params - v3.embedding_params == pytest.approx(37 * B, rel=0.02)
    # The indexer is the only difference from DeepSeek-V3: 61 layers of wq_b, wk, k_norm, weights_proj.
    indexer = 61 * (64 * 128 * 1536 + 128 * 7168 + 2 * 128 + 64 * 7168)
    assert card.total_params - v3.total_params == indexer
    assert card.family == "deepseek-mla-moe" and card.dims.attention == "mla"
    assert card.experts is not None
    assert (card.experts.routed, card.experts.shared, card.experts.per_token, card.experts.moe_layers) == (
        256, 1, 8, 58,
    )  # fmt: skip
    assert card.mtp_params == pytest.approx(14 * B, rel=0.05)  # "685B" on the model page = 671 + 14


def test_glm5_is_744b_with_zais_40b_active() -> None:
    card = card_from_config(GLM_5)
    assert card.total_params == pytest.approx(744 * B, rel=0.02)
    # Z.ai counts active parameters without the input embedding and the output head: that convention
    # gives GLM-4.5's published 32 B too (below), so it is Z.ai's, not one chosen for this figure.
    head = GLM_5["vocab_size"] * GLM_5["hidden_size"]
    assert card.active_params - card.embedding_params - head == pytest.approx(40 * B, rel=0.02)
    glm45 = card_from_config(GLM_45)
    head45 = GLM_45["vocab_size"] * GLM_45["hidden_size"]
    assert glm45.total_params == pytest.approx(355 * B, rel=0.02)
    assert glm45.active_params - glm45.embedding_params - head45 == pytest.approx(32 * B, rel=0.02)
    assert card.family == "deepseek-mla-moe"


@pytest.mark.parametrize("config", [DEEPSEEK_V32, GLM_5], ids=["deepseek_v32", "glm_moe_dsa"])
def test_structure_is_read_from_the_fields(config: dict) -> None:
    card = card_from_config(config).as_dict()
    structure = card["structure"]
    assert structure["mla"] == {
        "q_lora_rank": config["q_lora_rank"], "kv_lora_rank": 512,
        "qk_nope_head_dim": config["qk_nope_head_dim"], "qk_rope_head_dim": 64,
        "v_head_dim": config["v_head_dim"],
    }  # fmt: skip
    assert structure["indexer"]["heads"] == config["index_n_heads"]
    assert structure["indexer"]["topk"] == 2048
    assert structure["dense_layers"] == [0, 1, 2]
    assert structure["mtp_layers"] == 1
    note = next(n for n in card["notes"] if "laid out from the config's fields" in n)
    assert "multi-head latent attention" in note and "sparse-attention indexer" in note
    assert "256 routed experts" in note
    shapes, exact = config_tensor_shapes(config)  # type: ignore[misc]
    assert not exact
    assert shapes["model.layers.5.self_attn.kv_b_proj.weight"] == (
        config["num_attention_heads"] * (config["qk_nope_head_dim"] + config["v_head_dim"]), 512,
    )  # fmt: skip
    assert "model.layers.0.mlp.gate_proj.weight" in shapes  # dense first layers
    assert "model.layers.3.mlp.experts.255.up_proj.weight" in shapes


def test_layers_that_share_an_indexer_selection_hold_no_indexer() -> None:
    types = ["full"] * 3 + ["shared", "shared", "shared", "full"] * 18 + ["shared"] * 3
    card = card_from_config(GLM_5 | {"indexer_types": types}).as_dict()
    assert len(card["structure"]["indexer"]["layers_without"]) == types.count("shared")
    full = card_from_config(GLM_5)
    per_indexer = 32 * 128 * 2048 + 128 * 6144 + 2 * 128 + 32 * 6144
    assert full.total_params - card["total_params"] == types.count("shared") * per_indexer


@pytest.mark.parametrize(
    # Checkpoint index files live beside the configs in tests/data/configs; they are no configs.
    "name",
    sorted(p.name for p in CONFIGS.glob("*.json") if not p.name.endswith(".index.json"))
    if CONFIGS.is_dir()
    else [],
    ids=str,
)
def test_every_real_config_under_an_unknown_name_counts_within_2_percent(name: str) -> None:
    """Fields alone reproduce the checked layouts: rename each real config's model_type to one no
    table knows and the counts stay within 2 % (the layouts differ only in what no field states, such
    as Qwen2's q/k/v biases or gpt-oss's attention sinks)."""
    config = json.loads((CONFIGS / name).read_text())
    known, unknown = card_from_config(config), card_from_config(_renamed(config, "brand_new_arch"))
    assert known.total_params and unknown.total_params and known.active_params and unknown.active_params
    assert unknown.total_params == pytest.approx(known.total_params, rel=0.02)
    assert unknown.active_params == pytest.approx(known.active_params, rel=0.02)
    assert (unknown.experts is None) == (known.experts is None)


def test_config_asking_for_millions_of_layers_is_refused_before_building_them() -> None:
    with pytest.raises(ResourceLimitError):
        card_from_config(DEEPSEEK_V32 | {"model_type": "hostile_mla", "num_hidden_layers": 1 << 24})


def test_config_with_nothing_to_infer_says_unknown() -> None:
    card = card_from_config({"model_type": "mystery", "hidden_size": 64}).as_dict()
    assert card["total_params"] is None and card["active_params"] is None and card["family"] is None
    assert any(note.startswith("architecture unknown") for note in card["notes"])


def _tensors(shapes: dict[str, tuple[int, ...]]) -> list[TensorInfo]:
    return [
        TensorInfo(name, shape, "BF16", 2 * math.prod(shape), "model.safetensors")
        for name, shape in shapes.items()
    ]


TINY_MLA = {
    "model_type": "tiny_new_mla", "hidden_size": 32, "num_hidden_layers": 3, "vocab_size": 100,
    "num_attention_heads": 4, "q_lora_rank": 16, "kv_lora_rank": 8, "qk_nope_head_dim": 6,
    "qk_rope_head_dim": 2, "v_head_dim": 5, "intermediate_size": 40, "moe_intermediate_size": 12,
    "n_routed_experts": 6, "n_shared_experts": 1, "num_experts_per_tok": 2, "first_k_dense_replace": 1,
}  # fmt: skip


def test_weights_agreeing_with_the_fields_give_the_same_card() -> None:
    shapes, _ = config_tensor_shapes(TINY_MLA)  # type: ignore[misc]
    from_weights, from_config = card_from_tensors(_tensors(shapes), TINY_MLA), card_from_config(TINY_MLA)
    assert from_weights.total_params == from_config.total_params == from_weights.config_total_params
    assert from_weights.active_params == from_config.active_params
    assert not [note for note in from_weights.notes if "config.json" in note]


def test_weights_that_disagree_with_the_fields_win_and_are_reported() -> None:
    shapes, _ = config_tensor_shapes(TINY_MLA)  # type: ignore[misc]
    pruned = {name: shape for name, shape in shapes.items() if ".experts.5." not in name}  # one expert gone
    pruned["model.layers.0.mlp.up_proj.weight"] = (48, 32)  # and a wider dense MLP than the config says
    pruned["model.layers.0.mlp.gate_proj.weight"] = (48, 32)
    card = card_from_tensors(_tensors(pruned), TINY_MLA)
    assert card.experts is not None and card.experts.routed == 5
    assert card.dims.routed_experts == 5
    assert any("routed experts per layer 6 but the weights hold 5" in note for note in card.notes)
    assert any("other shapes than config.json implies" in note and "up_proj" in note for note in card.notes)
    assert card.total_params == sum(math.prod(shape) for shape in pruned.values())


def test_kimi_k25_vision_tower_is_reported_apart() -> None:
    config = json.loads((CONFIGS / "kimi-k2.5.json").read_text())
    card = card_from_config(config).as_dict()
    assert card["towers"] == [{"kind": "vision", "model_type": None, "layers": 27, "hidden_size": 1152,
                               "params": None, "tensors": 0}]  # fmt: skip
    # With weights, the tower's tensors are counted as the tower's, not the language model's.
    text = _renamed(TINY_MLA, "tiny_new_mla")
    wrapper = {"model_type": "tiny_vlm", "text_config": text, "vision_config": config["vision_config"]}
    shapes, _ = config_tensor_shapes(text)  # type: ignore[misc]
    tower = {"vision_tower.encoder.blocks.0.wqkv.weight": (96, 32), "mm_projector.proj.0.weight": (32, 128)}
    card = card_from_tensors(_tensors(shapes | tower), wrapper).as_dict()
    assert card["total_params"] == card_from_config(text).total_params
    assert card["towers"][0]["params"] == 96 * 32 + 32 * 128 and card["towers"][0]["layers"] == 27


# --- every config against its maker's published figures, under the maker's own convention ------------
#
# Makers count "active" parameters three ways, and a figure is only comparable under its maker's:
# ALL counts the input embedding and the output head (the card's active_params); NO_INPUT leaves the
# input embedding out (DeepSeek, OpenAI); NO_EMBEDDINGS leaves out the output head too (Z.ai). Each
# convention is pinned by two models of its maker where one exists (DeepSeek V3 and V3.2, Z.ai GLM-4.5
# and GLM-5), so it is the maker's habit, not one chosen to fit a figure.

ALL, NO_INPUT, NO_EMBEDDINGS = (
    "active_params", "active_params_excluding_input_embedding", "active_params_excluding_embeddings",
)  # fmt: skip
INDEX_CHECKED = {"chatglm2-6b.json": 6_243_584_000, "codegeex2-6b.json": 6_243_584_000}
PUBLISHED_CONFIGS = {"deepseek-v3.2": DEEPSEEK_V32, "glm-5": GLM_5, "glm-4.5": GLM_45}

# (config, maker, convention, published total, published active, where the figures are published)
PUBLISHED = [
    ("deepseek-v3.json", "DeepSeek", NO_INPUT, 671 * B, 37 * B, "DeepSeek-V3 model card"),
    ("deepseek-r1.json", "DeepSeek", NO_INPUT, 671 * B, 37 * B, "DeepSeek-R1 model card"),
    ("deepseek-v3.2", "DeepSeek", NO_INPUT, 671 * B, 37 * B, "DeepSeek-V3.2-Exp: V3's 671B/37B"),
    ("kimi-k2-instruct.json", "Moonshot", ALL, 1040 * B, 32.6 * B, "Kimi K2 report (arXiv 2507.20534)"),
    ("kimi-k2.5.json", "Moonshot", ALL, 1040 * B, 32.6 * B, "K2.5 keeps K2's text backbone"),
    ("qwen3-235b-a22b.json", "Alibaba", ALL, 235 * B, 22 * B, "Qwen3 model card"),
    ("qwen3-32b.json", "Alibaba", ALL, 32.8 * B, 32.8 * B, "Qwen3-32B model card"),
    ("qwen3-8b.json", "Alibaba", ALL, 8.2 * B, 8.2 * B, "Qwen3-8B model card"),
    ("cogito-v1-preview-qwen-14b.json", "Alibaba", ALL, 14.7 * B, 14.7 * B, "Qwen2.5-14B model card"),
    ("mixtral-8x22b-v0.1.json", "Mistral", ALL, 141 * B, 39 * B, "Mistral: 141B, 39B active"),
    ("llama-3.1-8b.json", "Meta", ALL, 8 * B, 8 * B, "Meta: Llama 3.1 8B"),
    ("llama-3.1-70b.json", "Meta", ALL, 70 * B, 70 * B, "Meta: Llama 3.1 70B"),
    ("gpt-oss-120b.json", "OpenAI", NO_INPUT, 116.8 * B, 5.1 * B, "OpenAI gpt-oss model card"),
    ("glm-5", "Z.ai", NO_EMBEDDINGS, 744 * B, 40 * B, "zai-org/GLM-5: 744B, 40B active"),
    ("glm-4.5", "Z.ai", NO_EMBEDDINGS, 355 * B, 32 * B, "GLM-4.5: 355B total, 32B active"),
]


def _config(name: str) -> dict:
    return PUBLISHED_CONFIGS.get(name) or json.loads((CONFIGS / name).read_text())


def test_every_config_in_tests_data_has_its_makers_figures() -> None:
    configs = {p.name for p in CONFIGS.glob("*.json") if not p.name.endswith(".index.json")}
    assert configs == {row[0] for row in PUBLISHED if row[0].endswith(".json")} | set(INDEX_CHECKED)


@pytest.mark.parametrize(
    ("name", "maker", "convention", "total", "active", "source"), PUBLISHED, ids=[row[0] for row in PUBLISHED]
)
def test_within_2_percent_of_the_published_counts_under_the_makers_convention(
    name: str, maker: str, convention: str, total: float, active: float, source: str
) -> None:
    card = card_from_config(_config(name))
    assert card.total_params == pytest.approx(total, rel=0.02), f"{maker}: {source}"
    assert card.as_dict()[convention] == pytest.approx(active, rel=0.02), f"{maker} ({convention}): {source}"


@pytest.mark.parametrize("name", sorted(INDEX_CHECKED))
def test_chatglm_counts_equal_the_checkpoint_index(name: str) -> None:
    # THUDM publishes no figure beyond the "6B" in the name; the index's total_size is the maker's own
    # count (2 bytes per parameter), matched exactly; a dense model is all active.
    card = card_from_config(_config(name))
    assert card.total_params == card.active_params == INDEX_CHECKED[name]


def test_the_makers_conventions_matter_for_deepseek_v32_and_glm5() -> None:
    """Counted with the embedding and the head, V3.2 and GLM-5 are 3.8 % and 4.5 % over "37 B" and
    "40 B"; the card therefore reports the makers' conventions beside its own."""
    v32, glm5 = card_from_config(DEEPSEEK_V32), card_from_config(GLM_5)
    assert v32.active_params / (37 * B) == pytest.approx(1.038, abs=0.001)
    assert glm5.active_params / (40 * B) == pytest.approx(1.045, abs=0.001)
    head = GLM_5["vocab_size"] * GLM_5["hidden_size"]
    assert glm5.head_params == glm5.embedding_params == head
    assert glm5.active_params_excluding_embeddings == glm5.active_params - 2 * head
    assert v32.active_params_excluding_input_embedding == v32.active_params - v32.embedding_params
