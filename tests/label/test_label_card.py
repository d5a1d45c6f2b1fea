"""A label carries the architecture card ``inspect`` shows: one card, counted once, by modeltrace.inspect.

The cases are the two where a second count summing tensor sizes went wrong: multi-token-prediction
layers (makers leave them out of the total) and packed quantised weights (stored elements are not
parameters).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from modeltrace import api
from modeltrace.inspect.card import card_from_config
from modeltrace.inspect.layouts import config_tensor_shapes

#: Keys of ``api.inspect`` that describe the file or its declarations, not the architecture.
FILE_LEVEL = {
    "path", "name", "format", "declared", "tokenizer_files", "unsafe_pickle", "warnings", "transfer"
}  # fmt: skip

#: A DeepSeek-V3-shaped model small enough to write: MLA, a dense first layer, routed and shared
#: experts, and one multi-token-prediction layer after the two main ones.
TINY_MTP = {
    "model_type": "deepseek_v3", "architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 32,
    "num_hidden_layers": 2, "vocab_size": 64, "num_attention_heads": 4, "num_key_value_heads": 4,
    "q_lora_rank": 16, "kv_lora_rank": 8, "qk_nope_head_dim": 6, "qk_rope_head_dim": 2, "v_head_dim": 5,
    "intermediate_size": 40, "moe_intermediate_size": 12, "n_routed_experts": 4, "n_shared_experts": 1,
    "num_experts_per_tok": 2, "first_k_dense_replace": 1, "moe_layer_freq": 1,
    "num_nextn_predict_layers": 1, "topk_method": "noaux_tc", "tie_word_embeddings": False,
}  # fmt: skip


def _inspect_card(path: Path) -> dict:
    return {key: value for key, value in api.inspect(path).items() if key not in FILE_LEVEL}


def _label_block(path: Path) -> dict:
    return dict(api.label_create(path, prefill=False)["model"]["architecture"])


def write_tiny_mtp(folder: Path) -> tuple[Path, int]:
    """The model's folder and the element count of every tensor in it."""
    laid_out = config_tensor_shapes(TINY_MTP)
    assert laid_out is not None
    generator = np.random.default_rng(3)
    tensors = {
        name: generator.standard_normal(shape).astype(np.float16) for name, shape in laid_out[0].items()
    }
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(TINY_MTP))
    save_file(tensors, str(folder / "model.safetensors"))
    return folder, sum(array.size for array in tensors.values())


def test_label_of_an_mtp_model_carries_inspects_card(tmp_path: Path) -> None:
    model, stored_elements = write_tiny_mtp(tmp_path / "tiny-mtp")
    block, card = _label_block(model), _inspect_card(model)
    assert block == {"model_type": "deepseek_v3", "parameters": card["total_params"], **card}
    # The MTP layer is in the file but outside the totals, in the label as in inspect.
    assert card["mtp_params"] > 0
    assert block["parameters"] + block["mtp_params"] == stored_elements
    assert block["total_params"] == card_from_config(TINY_MTP).total_params
    assert block["experts"]["routed"] == 4 and block["structure"]["mtp_layers"] == 1


def test_label_of_a_packed_quantised_model_carries_inspects_card(data_dir: Path, tmp_path: Path) -> None:
    # Written by compressed-tensors itself (tests/data/quantised/SOURCES.md): INT4 packed in I32.
    model = Path(shutil.copytree(data_dir / "quantised" / "model_ct_w4a16", tmp_path / "ct-w4a16"))
    block, card = _label_block(model), _inspect_card(model)
    assert block == {"model_type": "llama", "parameters": card["total_params"], **card}
    assert block["quantization"]["method"] == "compressed-tensors"
    # Parameters are the unpacked weights: what the same Llama holds in full precision (its weights
    # hold a 400-token vocabulary), not the stored int32 words and scales.
    full_precision = card_from_config({**block["hyperparameters"], "model_type": "llama", "vocab_size": 400})
    assert block["parameters"] == full_precision.total_params == 121_776
    stored = sum(math.prod(shape) for shape in _stored_shapes(model / "model.safetensors"))
    assert stored < block["parameters"]


def _stored_shapes(path: Path) -> list[tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(path), "np") as handle:
        return [tuple(handle.get_slice(name).get_shape()) for name in handle.keys()]  # noqa: SIM118
