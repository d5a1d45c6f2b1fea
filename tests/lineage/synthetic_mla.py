"""Tiny DeepSeek/Kimi-shaped models for lineage tests: multi-head latent attention (MLA), a dense
first layer, then routed experts plus one shared expert; numpy weights written as safetensors with a
``deepseek_v3`` config.json and a WordLevel tokenizer.json.

Like :mod:`synthetic`, models share "data" (``data_seed``): the token latent features that shape
every embedding, and banks of universal features that MLP units, the key/value latent and the value
rows read, so that independent models are alike in everything but their symmetry coins. Every MLP
unit's ``up`` sign and every value dimension's sign (its ``kv_b_proj`` value row with its ``o_proj``
column) is a fair coin, as in any trained model's law.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from synthetic import Params, default_vocab  # type: ignore[import-not-found]


@dataclass(frozen=True)
class MlaShape:
    vocab: int = 400
    hidden: int = 48
    layers: int = 3
    heads: int = 4
    nope: int = 6
    rope: int = 4
    v_dim: int = 8
    kv_lora: int = 16
    q_lora: int = 24
    inner: int = 64  # dense MLP of layer 0
    experts: int = 4
    expert_inner: int = 32
    per_token: int = 2

    def config(self) -> dict[str, object]:
        return {
            "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
            "vocab_size": self.vocab, "hidden_size": self.hidden, "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads, "num_key_value_heads": self.heads,
            "qk_nope_head_dim": self.nope, "qk_rope_head_dim": self.rope, "v_head_dim": self.v_dim,
            "kv_lora_rank": self.kv_lora, "q_lora_rank": self.q_lora, "intermediate_size": self.inner,
            "moe_intermediate_size": self.expert_inner, "n_routed_experts": self.experts,
            "n_shared_experts": 1, "num_experts_per_tok": self.per_token, "first_k_dense_replace": 1,
            "moe_layer_freq": 1, "tie_word_embeddings": False, "torch_dtype": "float32",
        }  # fmt: skip


SHAPE = MlaShape()


def _coins(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0], dtype=np.float32), count)


def _gated_mlp(params: Params, prefix: str, rng: np.random.Generator, bank: np.ndarray, mix: np.ndarray,
               hidden: int, inner: int, universal: float) -> None:  # fmt: skip
    shared = bank[rng.permutation(len(bank))[:inner]] @ mix * 4
    for role in ("gate_proj", "up_proj"):
        own = rng.standard_normal((inner, hidden)).astype(np.float32)
        params[f"{prefix}.{role}.weight"] = ((1 - universal) * own + universal * shared) / np.sqrt(hidden)
    signs = _coins(rng, inner)
    params[f"{prefix}.up_proj.weight"] *= signs[:, None]
    down = rng.standard_normal((hidden, inner)).astype(np.float32) / np.sqrt(inner)
    params[f"{prefix}.down_proj.weight"] = down * signs[None, :]


def make_mla_params(
    seed: int, shape: MlaShape = SHAPE, data_seed: int = 0, universal: float = 0.5, value_coins: bool = True
) -> Params:
    """``value_coins=False`` gives every value dimension sign +1 in every model: a law no trained model
    has, for showing that the null check can fail."""
    s = shape
    data = np.random.default_rng(data_seed)
    latent = data.standard_normal((s.vocab, 16)).astype(np.float32)
    mlp_bank = data.standard_normal((s.layers, 2 * s.inner, 16)).astype(np.float32)
    kv_bank = data.standard_normal((s.layers, s.kv_lora, 16)).astype(np.float32)  # what the latent reads
    value_bank = data.standard_normal((s.layers, 2 * s.heads * s.v_dim, 16)).astype(np.float32)
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((16, s.hidden)).astype(np.float32) / 4
    params: Params = {
        "model.embed_tokens.weight": latent @ mix
        + 0.5 * rng.standard_normal((s.vocab, s.hidden)).astype(np.float32)
    }

    def normal(*dims: int) -> np.ndarray:
        return rng.standard_normal(dims).astype(np.float32) / np.sqrt(dims[-1])

    for layer in range(s.layers):
        p = f"model.layers.{layer}"
        params[f"{p}.input_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(s.hidden)).astype(np.float32)
        params[f"{p}.post_attention_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(s.hidden)).astype(
            np.float32
        )
        params[f"{p}.self_attn.q_a_proj.weight"] = normal(s.q_lora, s.hidden)
        params[f"{p}.self_attn.q_a_layernorm.weight"] = np.ones(s.q_lora, dtype=np.float32)
        params[f"{p}.self_attn.q_b_proj.weight"] = normal(s.heads * (s.nope + s.rope), s.q_lora)
        # The key/value latent reads universal token features (the same for every model trained on
        # the same data, up to the latent's own basis), plus its rotary key rows.
        kv_latent = (1 - universal) * rng.standard_normal((s.kv_lora, s.hidden)) + universal * kv_bank[
            layer
        ] @ mix * 4
        params[f"{p}.self_attn.kv_a_proj_with_mqa.weight"] = np.concatenate(
            [kv_latent.astype(np.float32) / np.sqrt(s.hidden), normal(s.rope, s.hidden)]
        )
        params[f"{p}.self_attn.kv_a_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(s.kv_lora)).astype(
            np.float32
        )
        # kv_b_proj: per head, `nope` key rows then `v_dim` value rows. Each value dimension's composed
        # map from the attention input (value row . latent norm . latent) reads a universal token
        # feature, as values of models trained on the same data do, with its own sign coin shared
        # with its o_proj column.
        kv_b = normal(s.heads * (s.nope + s.v_dim), s.kv_lora).reshape(s.heads, s.nope + s.v_dim, s.kv_lora)
        own_values = rng.standard_normal((s.heads * s.v_dim, s.hidden)).astype(np.float32)
        shared_values = (
            value_bank[layer][rng.permutation(len(value_bank[layer]))[: s.heads * s.v_dim]] @ mix * 4
        )
        composed = ((1 - universal) * own_values + universal * shared_values) / np.sqrt(s.hidden)
        latent_map = params[f"{p}.self_attn.kv_a_proj_with_mqa.weight"][: s.kv_lora]
        latent_map = latent_map * params[f"{p}.self_attn.kv_a_layernorm.weight"][:, None]
        values = composed @ np.linalg.pinv(latent_map)  # the value rows whose composed map is `composed`
        value_signs = (
            _coins(rng, s.heads * s.v_dim) if value_coins else np.ones(s.heads * s.v_dim, np.float32)
        )
        kv_b[:, s.nope :, :] = (values * value_signs[:, None]).reshape(s.heads, s.v_dim, s.kv_lora)
        params[f"{p}.self_attn.kv_b_proj.weight"] = kv_b.reshape(-1, s.kv_lora)
        params[f"{p}.self_attn.o_proj.weight"] = normal(s.hidden, s.heads * s.v_dim) * value_signs[None, :]
        bank = mlp_bank[layer]
        if layer == 0:
            _gated_mlp(params, f"{p}.mlp", rng, bank, mix, s.hidden, s.inner, universal)
            continue
        params[f"{p}.mlp.gate.weight"] = normal(s.experts, s.hidden)
        for expert in range(s.experts):
            _gated_mlp(
                params, f"{p}.mlp.experts.{expert}", rng, bank, mix, s.hidden, s.expert_inner, universal
            )
        _gated_mlp(params, f"{p}.mlp.shared_experts", rng, bank, mix, s.hidden, s.expert_inner, universal)
    params["model.norm.weight"] = np.ones(s.hidden, dtype=np.float32)
    params["lm_head.weight"] = normal(s.vocab, s.hidden)
    return params


def write_mla_model(
    folder: Path, params: Params, shape: MlaShape = SHAPE, config_extra: dict | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(shape.config() | (config_extra or {})))
    vocab = default_vocab(shape.vocab)
    tokenizer = {
        "version": "1.0",
        "model": {"type": "WordLevel", "vocab": {t: i for i, t in enumerate(vocab)}, "unk_token": vocab[0]},
    }
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()},
        str(folder / "model.safetensors"),
    )
    return folder


# --- function-preserving transforms ----------------------------------------------------------------


def _mlp_prefixes(params: Params) -> list[str]:
    return [name[: -len(".up_proj.weight")] for name in params if name.endswith(".up_proj.weight")]


def permute_and_flip_units(params: Params, rng: np.random.Generator) -> Params:
    """Every MLP's units (dense, routed experts, shared expert) permuted and sign-flipped: both MLP
    unit symmetries applied, which leaves the two MLP tests no power."""
    out = dict(params)
    for prefix in _mlp_prefixes(params):
        up = params[f"{prefix}.up_proj.weight"]
        perm, signs = rng.permutation(up.shape[0]), _coins(rng, up.shape[0])
        out[f"{prefix}.up_proj.weight"] = up[perm] * signs[:, None]
        out[f"{prefix}.gate_proj.weight"] = params[f"{prefix}.gate_proj.weight"][perm]
        out[f"{prefix}.down_proj.weight"] = params[f"{prefix}.down_proj.weight"][:, perm] * signs[None, :]
    return out


def _per_head_rows(order: np.ndarray, width: int) -> np.ndarray:
    return (order[:, None] * width + np.arange(width)).reshape(-1)


def permute_heads(params: Params, rng: np.random.Generator, shape: MlaShape = SHAPE) -> Params:
    """Every layer's attention heads reordered: q_b_proj and kv_b_proj rows, o_proj columns, per head."""
    out = dict(params)
    s = shape
    for layer in range(s.layers):
        p = f"model.layers.{layer}.self_attn"
        order = rng.permutation(s.heads)
        out[f"{p}.q_b_proj.weight"] = params[f"{p}.q_b_proj.weight"][_per_head_rows(order, s.nope + s.rope)]
        out[f"{p}.kv_b_proj.weight"] = params[f"{p}.kv_b_proj.weight"][
            _per_head_rows(order, s.nope + s.v_dim)
        ]
        out[f"{p}.o_proj.weight"] = params[f"{p}.o_proj.weight"][:, _per_head_rows(order, s.v_dim)]
    return out


def flip_value_signs(params: Params, rng: np.random.Generator, shape: MlaShape = SHAPE) -> Params:
    """Random value dimensions sign-flipped: their kv_b_proj value rows and o_proj columns."""
    out = dict(params)
    s = shape
    for layer in range(s.layers):
        p = f"model.layers.{layer}.self_attn"
        signs = _coins(rng, s.heads * s.v_dim)
        rows = np.ones((s.heads, s.nope + s.v_dim), dtype=np.float32)
        rows[:, s.nope :] = signs.reshape(s.heads, s.v_dim)
        out[f"{p}.kv_b_proj.weight"] = params[f"{p}.kv_b_proj.weight"] * rows.reshape(-1)[:, None]
        out[f"{p}.o_proj.weight"] = params[f"{p}.o_proj.weight"] * signs[None, :]
    return out


# --- a numpy MLA attention, to check the symmetries above ------------------------------------------


def _rms(x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) * gain


def _rotary(x: np.ndarray) -> np.ndarray:
    """Rotate consecutive pairs of the last axis by position-dependent angles (x: [tokens, ..., dims])."""
    tokens, dims = x.shape[0], x.shape[-1]
    angles = np.arange(tokens)[:, None] * (1e-2 ** (np.arange(dims // 2) / (dims // 2)))[None, :]
    cos = np.cos(angles).reshape(tokens, *([1] * (x.ndim - 2)), -1)
    sin = np.sin(angles).reshape(tokens, *([1] * (x.ndim - 2)), -1)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = even * cos - odd * sin, even * sin + odd * cos
    return out


def mla_attention(params: Params, layer: int, x: np.ndarray, shape: MlaShape = SHAPE) -> np.ndarray:
    """One MLA attention block's output for token states ``x`` [tokens, hidden] (causal), as
    transformers' DeepSeek-V3 attention computes it."""
    s, p = shape, f"model.layers.{layer}"
    w = {
        name[len(p) + 1 :]: value.astype(np.float64)
        for name, value in params.items()
        if name.startswith(p + ".")
    }
    h = _rms(x, w["input_layernorm.weight"])
    q = _rms(h @ w["self_attn.q_a_proj.weight"].T, w["self_attn.q_a_layernorm.weight"])
    q = (q @ w["self_attn.q_b_proj.weight"].T).reshape(len(x), s.heads, s.nope + s.rope)
    compressed = h @ w["self_attn.kv_a_proj_with_mqa.weight"].T
    latent = _rms(compressed[:, : s.kv_lora], w["self_attn.kv_a_layernorm.weight"])
    k_rope = _rotary(compressed[:, s.kv_lora :])
    kv = (latent @ w["self_attn.kv_b_proj.weight"].T).reshape(len(x), s.heads, s.nope + s.v_dim)
    k_nope, v = kv[..., : s.nope], kv[..., s.nope :]
    query = np.concatenate([q[..., : s.nope], _rotary(q[..., s.nope :])], axis=-1)
    key = np.concatenate([k_nope, np.broadcast_to(k_rope[:, None, :], (len(x), s.heads, s.rope))], axis=-1)
    scores = np.einsum("thd,uhd->htu", query, key) / np.sqrt(s.nope + s.rope)
    scores = np.where(np.tril(np.ones((len(x), len(x)), dtype=bool))[None], scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    out = np.einsum("htu,uhd->thd", weights, v).reshape(len(x), s.heads * s.v_dim)
    return out @ w["self_attn.o_proj.weight"].T


def rotate_mla_residual(params: Params, rng: np.random.Generator) -> Params:
    """Function-preserving residual permutation + sign flips of an MLA model: every reader of the
    residual stream (q_a/q, kv_a, MLP gate/up, router; norm gains folded in) takes permuted, flipped
    columns, every writer (o_proj, down_proj) permuted, flipped rows."""
    hidden = params["model.embed_tokens.weight"].shape[1]
    perm = rng.permutation(hidden)
    signs = rng.choice([-1.0, 1.0], hidden).astype(np.float32)
    attention_readers = ("q_a_proj.weight", "q_proj.weight", "kv_a_proj_with_mqa.weight")
    mlp_readers = ("gate_proj.weight", "up_proj.weight", "mlp.gate.weight")
    out: Params = {}
    for name, value in params.items():
        layer = name.split(".self_attn")[0].split(".mlp")[0]
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            out[name] = value[:, perm] * signs
        elif name.endswith(attention_readers):
            out[name] = (value * params[layer + ".input_layernorm.weight"])[:, perm] * signs
        elif name.endswith(mlp_readers):
            out[name] = (value * params[layer + ".post_attention_layernorm.weight"])[:, perm] * signs
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            out[name] = value[perm] * signs[:, None]
        elif name.endswith(("input_layernorm.weight", "post_attention_layernorm.weight")):
            out[name] = np.ones_like(value)
        elif name == "model.norm.weight":
            out[name] = value[perm]
        else:
            out[name] = value
    return out
