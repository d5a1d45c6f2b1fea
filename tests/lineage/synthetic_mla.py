"""Tiny DeepSeek/Kimi-shaped models for lineage tests: multi-head latent attention (MLA), a dense
first layer, then routed experts plus one shared expert; numpy weights written as float32 safetensors
(by the ``safetensors`` package) with a ``deepseek_v3`` config.json and a WordLevel tokenizer.json.

The weights come from the seed case's generator (:func:`modeltrace.zoo.seed_case.make_params`) at a
smaller shape: models share "data" (``data_seed``), the token latent features that shape every
embedding and banks of universal features that MLP units, the key/value latent and the value rows
read, so that independent models are alike in everything but their symmetry coins. Every MLP unit's
``up`` sign and every value dimension's sign (its ``kv_b_proj`` value row with its ``o_proj`` column)
is a fair coin, as in any trained model's law. What is test-only lives here: the law without value
coins, the float32 writer and the function-preserving transforms with a numpy MLA attention.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from modeltrace.zoo.seed_case import KimiShape, make_params
from tests.lineage.synthetic import Params, default_vocab

#: The tests' shape: narrower than the seed case's and with 4 experts, so that many models are cheap.
SHAPE = KimiShape(hidden=48, nope=6, kv_lora=16, q_lora=24, inner=64, experts=4)


def _coins(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0], dtype=np.float32), count)


def _no_coins(rng: np.random.Generator, count: int) -> np.ndarray:
    return np.ones(count, np.float32)


def make_mla_params(
    seed: int, shape: KimiShape = SHAPE, data_seed: int = 0, universal: float = 0.5, value_coins: bool = True
) -> Params:
    """``value_coins=False`` gives every value dimension sign +1 in every model: a law no trained model
    has, for showing that the null check can fail."""
    return make_params(seed, shape, data_seed, universal, value_signs=_coins if value_coins else _no_coins)


def write_mla_model(
    folder: Path, params: Params, shape: KimiShape = SHAPE, config_extra: dict | None = None
) -> Path:
    """Unquantised float32 weights (the seed case ships FP8 and INT4), so values are read exactly."""
    folder.mkdir(parents=True, exist_ok=True)
    config = shape.config() | {"torch_dtype": "float32"} | (config_extra or {})
    (folder / "config.json").write_text(json.dumps(config))
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


def permute_heads(params: Params, rng: np.random.Generator, shape: KimiShape = SHAPE) -> Params:
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


def flip_value_signs(params: Params, rng: np.random.Generator, shape: KimiShape = SHAPE) -> Params:
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


def mla_attention(params: Params, layer: int, x: np.ndarray, shape: KimiShape = SHAPE) -> np.ndarray:
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
