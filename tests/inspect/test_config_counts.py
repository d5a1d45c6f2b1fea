"""Parameter counts from the real config.json files in tests/data/configs against published sizes.

Every figure below is quoted from tests/data/SOURCES.md, which records each maker's published
size and the exact per-config count ("every weight matrix, norm and bias; active counts both the
input embedding and the output projection; DeepSeek-V3's multi-token-prediction module not counted").
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pytest

from modeltrace.inspect.card import ArchitectureCard, card_from_config
from modeltrace.inspect.layouts import config_tensor_shapes

B = 1e9

# (config, makers' total, makers' active, where the makers say it) -- SOURCES.md "makers' figure".
MAKERS = [
    ("deepseek-v3.json", 671 * B, 37 * B, "DeepSeek-V3 model card: 671B total, 37B activated"),
    ("deepseek-r1.json", 671 * B, 37 * B, "DeepSeek-R1 model card: 671B total, 37B activated"),
    ("qwen3-235b-a22b.json", 235 * B, 22 * B, "Qwen3 model card: 235B, 22B activated"),
    ("qwen3-32b.json", 32.8 * B, 32.8 * B, "Qwen3-32B model card: 32.8B"),
    ("qwen3-8b.json", 8.2 * B, 8.2 * B, "Qwen3-8B model card: 8.2B"),
    ("mixtral-8x22b-v0.1.json", 141 * B, 39 * B, "Mistral: 141B, 39B active"),
    ("llama-3.1-8b.json", 8 * B, 8 * B, "Meta: Llama 3.1 8B"),
    ("llama-3.1-70b.json", 70 * B, 70 * B, "Meta: Llama 3.1 70B"),
    ("cogito-v1-preview-qwen-14b.json", 14.7 * B, 14.7 * B, "Qwen2.5-14B model card: 14.7B"),
    ("gpt-oss-120b.json", 116.8 * B, None, "OpenAI: 116.8B total (active: see the gpt-oss test)"),
]

# SOURCES.md's per-config counts (total, active), printed to 4 significant figures.
CURATED = {
    "kimi-k2-instruct.json": (1026.4 * B, 32.86 * B),
    "kimi-k2.5.json": (1026.4 * B, 32.86 * B),
    "deepseek-v3.json": (671.0 * B, 37.55 * B),
    "deepseek-r1.json": (671.0 * B, 37.55 * B),
    "qwen3-235b-a22b.json": (235.1 * B, 22.19 * B),
    "qwen3-32b.json": (32.76 * B, 32.76 * B),
    "qwen3-8b.json": (8.19 * B, 8.19 * B),
    "mixtral-8x22b-v0.1.json": (140.6 * B, 39.15 * B),
    "gpt-oss-120b.json": (116.8 * B, 5.71 * B),
    "llama-3.1-8b.json": (8.03 * B, 8.03 * B),
    "llama-3.1-70b.json": (70.55 * B, 70.55 * B),
    "cogito-v1-preview-qwen-14b.json": (14.77 * B, 14.77 * B),
}

# Configs without a published size in SOURCES.md; they are checked against their index.json instead.
INDEX_CHECKED = {"chatglm2-6b.json", "codegeex2-6b.json"}


@functools.cache
def _card_of(path: Path) -> ArchitectureCard:
    return card_from_config(json.loads(path.read_text()))


def _card(data_dir: Path, name: str) -> ArchitectureCard:
    return _card_of(data_dir / "configs" / name)


def test_every_config_in_tests_data_is_covered(data_dir: Path) -> None:
    configs = {p.name for p in (data_dir / "configs").glob("*.json") if not p.name.endswith(".index.json")}
    assert configs == set(CURATED) | INDEX_CHECKED


@pytest.mark.parametrize(("name", "total", "active", "source"), MAKERS, ids=[m[0] for m in MAKERS])
def test_matches_makers_figure_within_2_percent(
    data_dir: Path, name: str, total: float, active: float | None, source: str
) -> None:
    card = _card(data_dir, name)
    assert card.total_params == pytest.approx(total, rel=0.02), source
    if active is not None:
        assert card.active_params == pytest.approx(active, rel=0.02), source


@pytest.mark.parametrize("name", sorted(CURATED))
def test_matches_curated_count(data_dir: Path, name: str) -> None:
    total, active = CURATED[name]
    card = _card(data_dir, name)
    assert card.total_params == pytest.approx(total, rel=0.001)
    assert card.active_params == pytest.approx(active, rel=0.001)


@pytest.mark.parametrize("name", ["kimi-k2-instruct.json", "kimi-k2.5.json"])
def test_kimi_k2_is_one_trillion_with_32b_active(data_dir: Path, name: str) -> None:
    # Moonshot publishes "1T total, 32B activated": one significant figure for the total and the
    # active count truncated, so a 2 % band around the rounded numbers would not hold for any exact
    # count. The figures (about 1.03 T, 32.6 B, 3.2 %) are checked within 2 % instead.
    card = _card(data_dir, name)
    assert round(card.total_params / 1e12) == 1
    assert math.floor(card.active_params / B) == 32
    assert card.total_params == pytest.approx(1.03e12, rel=0.02)
    assert card.active_params == pytest.approx(32.6 * B, rel=0.02)
    assert card.activation_rate == pytest.approx(0.032, rel=0.02)
    assert card.experts is not None
    assert (card.experts.routed, card.experts.shared, card.experts.per_token) == (384, 1, 8)


def test_kimi_k25_counts_its_text_backbone_and_says_the_vision_tower_is_not(data_dir: Path) -> None:
    card = _card(data_dir, "kimi-k2.5.json").as_dict()
    assert card["architecture"] == "kimi_k25"
    assert card["text_model_type"] == "kimi_k2"
    assert card["family"] == "deepseek-mla-moe"
    assert any("vision tower not counted" in note for note in card["notes"])


def test_deepseek_v3_mtp_module_is_reported_apart(data_dir: Path) -> None:
    # DeepSeek-V3 model card: "685B ... includes 671B of the Main Model weights and 14B of the
    # Multi-Token Prediction (MTP) Module weights".
    card = _card(data_dir, "deepseek-v3.json")
    assert card.mtp_params == pytest.approx(14 * B, rel=0.05)
    assert card.total_params + card.mtp_params == pytest.approx(685 * B, rel=0.02)


def test_gpt_oss_active_without_input_embedding_matches_openai(data_dir: Path) -> None:
    # SOURCES.md: "5.1 B active (OpenAI leaves the input embedding out: 5.71 - 0.58 = 5.13)".
    card = _card(data_dir, "gpt-oss-120b.json")
    assert card.active_params - card.embedding_params == pytest.approx(5.1 * B, rel=0.02)
    assert card.experts is not None
    assert (card.experts.routed, card.experts.per_token) == (128, 4)


@pytest.mark.parametrize(
    ("config", "index"),
    [
        ("codegeex2-6b.json", "codegeex2-6b.pytorch_model.bin.index.json"),
        ("cogito-v1-preview-qwen-14b.json", "cogito-v1-preview-qwen-14b.safetensors.index.json"),
    ],
)
def test_layout_reproduces_real_checkpoint_index(data_dir: Path, config: str, index: str) -> None:
    """The config's implied tensors are exactly the checkpoint's, and at 2 bytes each fill total_size."""
    laid_out = config_tensor_shapes(json.loads((data_dir / "configs" / config).read_text()))
    assert laid_out is not None
    shapes, exact = laid_out
    real = json.loads((data_dir / "configs" / index).read_text())
    assert exact
    assert set(shapes) == set(real["weight_map"])
    assert sum(math.prod(shape) for shape in shapes.values()) * 2 == real["metadata"]["total_size"]


def test_chatglm2_and_codegeex2_share_an_architecture(data_dir: Path) -> None:
    chatglm, codegeex = _card(data_dir, "chatglm2-6b.json"), _card(data_dir, "codegeex2-6b.json")
    assert chatglm.total_params == codegeex.total_params == 6_243_584_000
    assert (chatglm.dims.context_length, codegeex.dims.context_length) == (32768, 8192)
    assert chatglm.dims.kv_heads == 2
    assert chatglm.family == "chatglm"


def test_kimi_k2_has_deepseek_v3_architecture_but_other_sizes(data_dir: Path) -> None:
    # SOURCES.md: Kimi K2 reuses the DeepSeek-V3 design with its own weights; the card shows the
    # shared family and the differing sizes (a matching architecture is not lineage).
    kimi, deepseek = _card(data_dir, "kimi-k2-instruct.json"), _card(data_dir, "deepseek-v3.json")
    assert kimi.family == deepseek.family == "deepseek-mla-moe"
    assert kimi.dims.attention == deepseek.dims.attention == "mla"
    assert (kimi.dims.attention_heads, deepseek.dims.attention_heads) == (64, 128)
    assert (kimi.dims.vocab_size, deepseek.dims.vocab_size) == (163840, 129280)


def test_dense_configs_are_fully_active(data_dir: Path) -> None:
    for name in ("llama-3.1-8b.json", "qwen3-32b.json", "chatglm2-6b.json"):
        card = _card(data_dir, name)
        assert card.experts is None
        assert card.active_params == card.total_params
        assert card.activation_rate == 1.0
