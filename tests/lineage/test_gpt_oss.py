"""gpt-oss-shaped models: every layer's experts fused in 3-D tensors (``mlp.experts.gate_up_proj``
``[experts, hidden, 2 * inner]`` with gate and up columns interleaved, ``down_proj`` ``[experts,
inner, hidden]``), in bf16 or as MXFP4 ``_blocks``/``_scales`` the way gpt-oss ships them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modeltrace import api
from modeltrace.fingerprint.build import build_fingerprint
from modeltrace.fingerprint.model import Fingerprint
from modeltrace.formats.detect import open_model
from modeltrace.lineage.compare import compare_fingerprints
from tests.lineage.quant_encoders import bf16, dense, mxfp4_blocks, write_safetensors
from tests.lineage.synthetic import default_vocab

VOCAB, HIDDEN, INNER, EXPERTS, LAYERS = 400, 64, 64, 4, 3


def gpt_oss_params(seed: int, data_seed: int = 0) -> dict[str, np.ndarray]:
    data = np.random.default_rng(data_seed)
    latent = data.standard_normal((VOCAB, 16)).astype(np.float32)
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((16, HIDDEN)).astype(np.float32) / 4
    params = {"model.embed_tokens.weight": latent @ mix + 0.5 * rng.standard_normal((VOCAB, HIDDEN))}
    for layer in range(LAYERS):
        prefix = f"model.layers.{layer}."
        for role, shape in (("q_proj", (HIDDEN, HIDDEN)), ("k_proj", (HIDDEN // 2, HIDDEN)),
                            ("v_proj", (HIDDEN // 2, HIDDEN)), ("o_proj", (HIDDEN, HIDDEN))):  # fmt: skip
            params[prefix + f"self_attn.{role}.weight"] = rng.standard_normal(shape) / np.sqrt(shape[1])
        params[prefix + "mlp.router.weight"] = rng.standard_normal((EXPERTS, HIDDEN)) / 8
        # transformers' parameter layout: hidden @ gate_up_proj[e] -> [2 * inner];
        # gate = [..., ::2], up = [..., 1::2]
        params[prefix + "mlp.experts.gate_up_proj"] = rng.standard_normal((EXPERTS, HIDDEN, 2 * INNER)) / 8
        params[prefix + "mlp.experts.gate_up_proj_bias"] = np.zeros((EXPERTS, 2 * INNER))
        params[prefix + "mlp.experts.down_proj"] = rng.standard_normal((EXPERTS, INNER, HIDDEN)) / 8
        params[prefix + "mlp.experts.down_proj_bias"] = np.zeros((EXPERTS, HIDDEN))
        params[prefix + "input_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(HIDDEN)
        params[prefix + "post_attention_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(HIDDEN)
    params["model.norm.weight"] = np.ones(HIDDEN)
    params["lm_head.weight"] = rng.standard_normal((VOCAB, HIDDEN)) / 8
    return {name: np.asarray(value, dtype=np.float32) for name, value in params.items()}


def write_gpt_oss(folder: Path, params: dict[str, np.ndarray], mxfp4: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stored = {}
    for name, value in params.items():
        if mxfp4 and name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            blocks, scales = mxfp4_blocks(value.transpose(0, 2, 1))  # stored by output rows
            stored[name + "_blocks"], stored[name + "_scales"] = ("U8", blocks), ("U8", scales)
        else:
            stored[name] = bf16(value) if name.endswith(("proj", "weight")) else dense(value)
    write_safetensors(folder / "model.safetensors", stored)
    config = {
        "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "vocab_size": VOCAB,
        "hidden_size": HIDDEN, "intermediate_size": INNER, "num_hidden_layers": LAYERS,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": HIDDEN // 4,
        "num_local_experts": EXPERTS, "num_experts_per_tok": 2,
    }  # fmt: skip
    if mxfp4:
        config["quantization_config"] = {
            "quant_method": "mxfp4",
            "modules_to_not_convert": ["model.layers.*.self_attn"],
        }
    (folder / "config.json").write_text(json.dumps(config))
    vocab = default_vocab(VOCAB)
    model = {"type": "WordLevel", "vocab": {t: i for i, t in enumerate(vocab)}, "unk_token": vocab[0]}
    tokenizer = {"version": "1.0", "model": model}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    return folder


def _fp(folder: Path) -> Fingerprint:
    with open_model(folder) as source:
        return build_fingerprint(source)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gpt_oss")
    base = gpt_oss_params(1)
    return {
        "base": write_gpt_oss(root / "base", base, mxfp4=False),
        "mxfp4": write_gpt_oss(root / "mxfp4", base, mxfp4=True),
        "independent": write_gpt_oss(root / "independent", gpt_oss_params(2), mxfp4=False),
        "independent_mxfp4": write_gpt_oss(root / "independent_mxfp4", gpt_oss_params(2), mxfp4=True),
    }


def test_fused_experts_become_one_block_per_expert(models: dict[str, Path]) -> None:
    for name in ("base", "mxfp4"):
        fingerprint = _fp(models[name])
        assert fingerprint.header["mlp_blocks_total"] == LAYERS * EXPERTS
        assert {(b.layer, b.expert) for b in fingerprint.blocks} == {
            (layer, expert) for layer in range(LAYERS) for expert in range(EXPERTS)
        }
        assert all(b.units == INNER and b.gate is not None for b in fingerprint.blocks)


def test_bf16_and_mxfp4_read_the_same_gate_and_up_units(models: dict[str, Path]) -> None:
    """Unit j of expert e is column 2j (gate) / 2j+1 (up) of the bf16 slab and row 2j / 2j+1 of the
    MXFP4 blocks: both readings agree to MXFP4 precision."""
    base, quantised = _fp(models["base"]), _fp(models["mxfp4"])
    for ours, theirs in zip(base.blocks, quantised.blocks, strict=True):
        assert (ours.layer, ours.expert) == (theirs.layer, theirs.expert)
        for a, b in ((ours.up, theirs.up), (ours.gate, theirs.gate)):
            cosine = np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b)
            assert cosine > 0.97


def test_mxfp4_child_is_related_to_its_bf16_base_and_unrelated_to_another(models: dict[str, Path]) -> None:
    child = _fp(models["mxfp4"])
    related = compare_fingerprints(child, _fp(models["base"]))
    assert related.verdict == "related"
    assert related.relation == "quantized (mxfp4 group 32, e8m0 scales)"
    assert related.layer_map == {str(layer): layer for layer in range(LAYERS)}
    for other in ("independent", "independent_mxfp4"):
        assert compare_fingerprints(child, _fp(models[other])).verdict == "unrelated"


def test_inspect_counts_mxfp4_experts_as_their_bf16_parameters(models: dict[str, Path]) -> None:
    dense_card, packed_card = api.inspect(models["base"]), api.inspect(models["mxfp4"])
    assert packed_card["total_params"] == dense_card["total_params"]
    assert packed_card["active_params"] == dense_card["active_params"]
    assert packed_card["experts"]["routed"] == EXPERTS
    assert packed_card["quantization"]["method"] == "mxfp4"
    assert packed_card["quantization"]["quantised_tensors"] == 2 * LAYERS
    assert packed_card["total_bytes"] < dense_card["total_bytes"]
