"""The seed case as a tiny family: a Kimi-shaped base, a "vendor product" derived from it, and a model
of the same architecture made independently (numpy only; about 1 MB and under a second).

The shape is Kimi K2's / DeepSeek-V3's in miniature: multi-head latent attention (MLA), a dense first
layer, then many routed experts plus one shared expert per layer. The files are shipped as those
vendors ship them:

- ``kimi-base/``: block-FP8 (``F8_E4M3`` weights with 128x128 ``weight_scale_inv`` blocks, as
  DeepSeek-V3 and Kimi K2 release them);
- ``vendor-product/``: the base fine-tuned (its weights plus seeded noise), with some routed experts
  pruned (``n_routed_experts`` reduced, the router's rows dropped with them) and re-quantised to
  compressed-tensors INT4 (``pack-quantized``, group 32, symmetric: Kimi K2.5's release format). Its
  config declares no base model;
- ``independent/``: the same architecture and the same "data" from an independent seed (the Kimi K2
  vs DeepSeek-V3 situation: architecture reused, weights not).

Models "trained on the same data" share universal features (the token latents every embedding is
built from, and banks of features that MLP units, the key/value latent and the value rows read), so
the independent model is alike in everything but its own draws and its symmetry coins: the lineage
tests must tell lineage from shared data, not from shared shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modeltrace.zoo.compressed_tensors import pack_int4_groups
from modeltrace.zoo.files import write_json, write_safetensors
from modeltrace.zoo.quantize import quantize_fp8_blocks

Params = dict[str, np.ndarray]

BASE, CHILD, INDEPENDENT = "kimi-base", "vendor-product", "independent"
#: Relation of the child to the base (for lineage files and the accuracy benchmark).
CHILD_RELATION = "finetune"
#: Routed experts the vendor kept in every MoE layer (of the base's 8).
KEPT_EXPERTS = (0, 1, 2, 4, 5, 7)
INT4_GROUP = 32


@dataclass(frozen=True)
class KimiShape:
    vocab: int = 400
    hidden: int = 64
    layers: int = 3
    heads: int = 4
    nope: int = 8
    rope: int = 4
    v_dim: int = 8
    kv_lora: int = 32
    q_lora: int = 32
    inner: int = 128  # the dense MLP of layer 0
    experts: int = 8
    expert_inner: int = 32
    per_token: int = 2

    def config(self, experts: int | None = None) -> dict[str, object]:
        return {
            "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
            "vocab_size": self.vocab, "hidden_size": self.hidden, "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads, "num_key_value_heads": self.heads,
            "qk_nope_head_dim": self.nope, "qk_rope_head_dim": self.rope, "v_head_dim": self.v_dim,
            "kv_lora_rank": self.kv_lora, "q_lora_rank": self.q_lora, "intermediate_size": self.inner,
            "moe_intermediate_size": self.expert_inner,
            "n_routed_experts": self.experts if experts is None else experts,
            "n_shared_experts": 1, "num_experts_per_tok": self.per_token, "first_k_dense_replace": 1,
            "moe_layer_freq": 1, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        }  # fmt: skip


SHAPE = KimiShape()
_FEATURES = 16  # width of the universal token features


def _coins(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0], dtype=np.float32), count)


#: Draws the signs of ``count`` value dimensions (with their o_proj columns) from the model's generator.
SignDraw = Callable[[np.random.Generator, int], np.ndarray]


def _gated_mlp(params: Params, prefix: str, rng: np.random.Generator, bank: np.ndarray, mix: np.ndarray,
               inner: int, universal: float) -> None:  # fmt: skip
    """gate/up rows read universal features (as units of models trained on the same data do); every
    unit's sign (its up row with its down column) is a fair coin, as in any trained model."""
    hidden = mix.shape[1]
    shared = bank[rng.permutation(len(bank))[:inner]] @ mix * 4
    for role in ("gate_proj", "up_proj"):
        own = rng.standard_normal((inner, hidden)).astype(np.float32)
        params[f"{prefix}.{role}.weight"] = ((1 - universal) * own + universal * shared) / np.sqrt(hidden)
    signs = _coins(rng, inner)
    params[f"{prefix}.up_proj.weight"] *= signs[:, None]
    down = rng.standard_normal((hidden, inner)).astype(np.float32) / np.sqrt(inner)
    params[f"{prefix}.down_proj.weight"] = down * signs[None, :]


def _attention(params: Params, p: str, rng: np.random.Generator, s: KimiShape, mix: np.ndarray,
               kv_bank: np.ndarray, value_bank: np.ndarray, universal: float,
               value_signs: SignDraw) -> None:  # fmt: skip
    def normal(*dims: int) -> np.ndarray:
        return rng.standard_normal(dims).astype(np.float32) / np.sqrt(dims[-1])

    params[f"{p}.q_a_proj.weight"] = normal(s.q_lora, s.hidden)
    params[f"{p}.q_a_layernorm.weight"] = np.ones(s.q_lora, dtype=np.float32)
    params[f"{p}.q_b_proj.weight"] = normal(s.heads * (s.nope + s.rope), s.q_lora)
    # The key/value latent reads universal token features, plus its rotary key rows.
    own_latent = rng.standard_normal((s.kv_lora, s.hidden)).astype(np.float32)
    kv_latent = ((1 - universal) * own_latent + universal * kv_bank @ mix * 4) / np.sqrt(s.hidden)
    params[f"{p}.kv_a_proj_with_mqa.weight"] = np.concatenate([kv_latent, normal(s.rope, s.hidden)])
    gain = (1 + 0.1 * rng.standard_normal(s.kv_lora)).astype(np.float32)
    params[f"{p}.kv_a_layernorm.weight"] = gain
    # kv_b_proj: per head, `nope` key rows then `v_dim` value rows. Each value dimension's composed map
    # from the attention input reads a universal feature, with a sign coin shared with its o_proj column.
    kv_b = normal(s.heads * (s.nope + s.v_dim), s.kv_lora).reshape(s.heads, s.nope + s.v_dim, s.kv_lora)
    values_count = s.heads * s.v_dim
    own_values = rng.standard_normal((values_count, s.hidden)).astype(np.float32)
    shared_values = value_bank[rng.permutation(len(value_bank))[:values_count]] @ mix * 4
    composed = ((1 - universal) * own_values + universal * shared_values) / np.sqrt(s.hidden)
    values = composed @ np.linalg.pinv(kv_latent * gain[:, None])
    signs = value_signs(rng, values_count)
    kv_b[:, s.nope :, :] = (values * signs[:, None]).reshape(s.heads, s.v_dim, s.kv_lora)
    params[f"{p}.kv_b_proj.weight"] = kv_b.reshape(-1, s.kv_lora).astype(np.float32)
    params[f"{p}.o_proj.weight"] = normal(s.hidden, values_count) * signs[None, :]


def _scaled_normal(rng: np.random.Generator, rows: int, columns: int) -> np.ndarray:
    """N(0, 1 / columns) in float32: the router's and the LM head's initial scale."""
    return (rng.standard_normal((rows, columns)).astype(np.float32) / np.sqrt(columns)).astype(np.float32)


def make_params(
    seed: int,
    shape: KimiShape = SHAPE,
    data_seed: int = 0,
    universal: float = 0.5,
    value_signs: SignDraw = _coins,
) -> Params:
    """A "pre-trained" Kimi-shaped model: ``seed`` is the run, ``data_seed`` the data it learnt from,
    ``universal`` the weight of the features every model of that data shares. Every value dimension's
    sign is a fair coin (``value_signs``), as in any trained model's law; the lineage tests swap in
    other laws to show that their null checks can fail."""
    s = shape
    data = np.random.default_rng(data_seed)
    latent = data.standard_normal((s.vocab, _FEATURES)).astype(np.float32)
    mlp_bank = data.standard_normal((s.layers, 2 * s.inner, _FEATURES)).astype(np.float32)
    kv_bank = data.standard_normal((s.layers, s.kv_lora, _FEATURES)).astype(np.float32)
    value_bank = data.standard_normal((s.layers, 2 * s.heads * s.v_dim, _FEATURES)).astype(np.float32)
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((_FEATURES, s.hidden)).astype(np.float32) / 4
    noise = rng.standard_normal((s.vocab, s.hidden)).astype(np.float32)
    params: Params = {"model.embed_tokens.weight": latent @ mix + 0.5 * noise}
    for layer in range(s.layers):
        p = f"model.layers.{layer}"
        for norm in ("input_layernorm", "post_attention_layernorm"):
            params[f"{p}.{norm}.weight"] = (1 + 0.1 * rng.standard_normal(s.hidden)).astype(np.float32)
        _attention(
            params, f"{p}.self_attn", rng, s, mix, kv_bank[layer], value_bank[layer], universal, value_signs
        )
        if layer == 0:  # first_k_dense_replace = 1
            _gated_mlp(params, f"{p}.mlp", rng, mlp_bank[layer], mix, s.inner, universal)
            continue
        params[f"{p}.mlp.gate.weight"] = _scaled_normal(rng, s.experts, s.hidden)
        for expert in range(s.experts):
            _gated_mlp(
                params, f"{p}.mlp.experts.{expert}", rng, mlp_bank[layer], mix, s.expert_inner, universal
            )
        _gated_mlp(params, f"{p}.mlp.shared_experts", rng, mlp_bank[layer], mix, s.expert_inner, universal)
    params["model.norm.weight"] = np.ones(s.hidden, dtype=np.float32)
    params["lm_head.weight"] = _scaled_normal(rng, s.vocab, s.hidden)
    return params


def fine_tune(params: Params, seed: int, scale: float = 0.1) -> Params:
    """Seeded noise of ``scale`` times each tensor's spread: what a fine-tune does to the weights."""
    rng = np.random.default_rng(seed)
    return {
        name: (value + scale * value.std() * rng.standard_normal(value.shape)).astype(np.float32)
        for name, value in params.items()
    }


def prune_experts(params: Params, kept: tuple[int, ...]) -> Params:
    """Keep only the routed experts ``kept`` in every MoE layer, renumbered 0.., router rows with them."""
    out: Params = {}
    for name, value in params.items():
        if ".mlp.experts." in name:
            head, rest = name.split(".mlp.experts.", 1)
            index, tail = rest.split(".", 1)
            if int(index) in kept:
                out[f"{head}.mlp.experts.{kept.index(int(index))}.{tail}"] = value
        elif name.endswith(".mlp.gate.weight"):
            out[name] = value[list(kept)]
        else:
            out[name] = value
    return out


def _is_linear(name: str) -> bool:
    """The decoder's Linear weights (what both release toolchains quantise; not the router or norms)."""
    return name.startswith("model.layers.") and name.endswith(("_proj.weight", "_proj_with_mqa.weight"))


def _write(folder: Path, tensors: dict[str, np.ndarray], dtypes: dict[str, str], config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", config)
    vocab = {f"w{i}": i for i in range(SHAPE.vocab)}
    tokenizer = {"version": "1.0", "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "w0"}}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    write_safetensors(folder / "model.safetensors", tensors, dtypes, metadata={"format": "pt"})
    return folder


#: DeepSeek-V3's / Kimi K2's quantization_config.
FP8_CONFIG = {
    "quant_method": "fp8",
    "fmt": "e4m3",
    "activation_scheme": "dynamic",
    "weight_block_size": [128, 128],
}
#: Kimi K2.5's: compressed-tensors W4A16, symmetric int4 in groups of 32 along the input.
INT4_CONFIG = {
    "quant_method": "compressed-tensors", "format": "pack-quantized",
    "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
        "num_bits": 4, "type": "int", "strategy": "group", "group_size": INT4_GROUP, "symmetric": True,
    }}},
    "ignore": ["lm_head", "re:.*mlp.gate$"],
}  # fmt: skip


def write_fp8(folder: Path, params: Params, shape: KimiShape = SHAPE) -> Path:
    tensors: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    for name, value in params.items():
        if _is_linear(name):
            codes, scale_inv = quantize_fp8_blocks(value)
            tensors[name], tensors[name + "_scale_inv"] = codes, scale_inv
            dtypes[name] = "F8_E4M3"
        else:
            tensors[name] = value
    return _write(folder, tensors, dtypes, {**shape.config(), "quantization_config": FP8_CONFIG})


def write_int4(folder: Path, params: Params, experts: int, shape: KimiShape = SHAPE) -> Path:
    tensors: dict[str, np.ndarray] = {}
    for name, value in params.items():
        if _is_linear(name):
            prefix = name[: -len("weight")]
            for suffix, part in pack_int4_groups(value, INT4_GROUP).items():
                tensors[prefix + suffix] = part
        else:
            tensors[name] = value
    return _write(folder, tensors, {}, {**shape.config(experts), "quantization_config": INT4_CONFIG})


def build_seed_case(directory: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write the three models under ``directory``; returns their folders by role (base, child, independent).

    Deterministic in ``seed``: the base is run ``seed``, the independent model run ``seed + 1`` on the
    same data, the child's fine-tuning noise is seeded from ``seed`` too.
    """
    root = Path(directory)
    base = make_params(seed)
    child = prune_experts(fine_tune(base, seed + 1000), KEPT_EXPERTS)
    return {
        BASE: write_fp8(root / BASE, base),
        CHILD: write_int4(root / CHILD, child, experts=len(KEPT_EXPERTS)),
        INDEPENDENT: write_fp8(root / INDEPENDENT, make_params(seed + 1)),
    }
