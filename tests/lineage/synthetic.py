"""Synthetic Llama-style models for lineage tests: numpy weights written as safetensors + config.json +
tokenizer.json (WordLevel), and the function-preserving or lineage-preserving transforms applied to them.

Models share "data": token latent features ``Z`` (seeded by ``data_seed``) shape every embedding, so
independent models trained "on the same data" have correlated embeddings and units reading the same
latent features (universal features), the hard case for calibration.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

Params = dict[str, np.ndarray]


def make_params(
    seed: int,
    *,
    vocab: int = 400,
    hidden: int = 48,
    inner: int = 96,
    layers: int = 4,
    data_seed: int = 0,
    universal: float = 0.5,
) -> Params:
    data = np.random.default_rng(data_seed)
    latent = data.standard_normal((vocab, 16)).astype(np.float32)
    bank = data.standard_normal((layers, inner, 16)).astype(np.float32)  # per-layer universal features
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((16, hidden)).astype(np.float32) / 4
    params: Params = {
        "model.embed_tokens.weight": latent @ mix
        + 0.5 * rng.standard_normal((vocab, hidden)).astype(np.float32)
    }
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        for role, shape in (
            ("self_attn.q_proj", (hidden, hidden)),
            ("self_attn.k_proj", (hidden // 2, hidden)),
            ("self_attn.v_proj", (hidden // 2, hidden)),
            ("self_attn.o_proj", (hidden, hidden)),
            ("mlp.down_proj", (hidden, inner)),
        ):
            params[prefix + role + ".weight"] = rng.standard_normal(shape).astype(np.float32) / np.sqrt(
                shape[1]
            )
        # Universal part: unit i reads a latent feature in BOTH its gate and up rows (the coupling that
        # same-data training produces), but WHICH unit does so is up to the seed...
        shared = bank[layer][rng.permutation(inner)] @ mix * 4
        for role in ("mlp.gate_proj", "mlp.up_proj"):
            own = rng.standard_normal((inner, hidden)).astype(np.float32)
            params[prefix + role + ".weight"] = ((1 - universal) * own + universal * shared) / np.sqrt(hidden)
        # ...and so is the sign of each unit's up row and down column: flipping both leaves a gated MLP
        # unchanged, the initialisation is symmetric and training equivariant, so any trained model's
        # law is invariant under it (the unit-sign test's null).
        signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), inner)
        params[prefix + "mlp.up_proj.weight"] *= signs[:, None]
        params[prefix + "mlp.down_proj.weight"] *= signs[None, :]
        # Attention values read universal features too (same-data training), each value dimension with
        # its own sign coin, flipped together with the output-projection columns that read it.
        value_rows = hidden // 2
        shared_v = bank[layer][rng.permutation(inner)[:value_rows]] @ mix * 4
        own_v = rng.standard_normal((value_rows, hidden)).astype(np.float32)
        value_signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), value_rows)
        params[prefix + "self_attn.v_proj.weight"] = (
            ((1 - universal) * own_v + universal * shared_v) / np.sqrt(hidden) * value_signs[:, None]
        )
        params[prefix + "self_attn.o_proj.weight"] *= _output_columns(value_signs, hidden)[None, :]
        params[prefix + "input_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)
        params[prefix + "post_attention_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(hidden)).astype(
            np.float32
        )
    params["model.norm.weight"] = np.ones(hidden, dtype=np.float32)
    params["lm_head.weight"] = rng.standard_normal((vocab, hidden)).astype(np.float32) / np.sqrt(hidden)
    return params


#: The synthetic attention: 4 query heads and 2 key/value heads (query heads 2g, 2g+1 read kv head g).
QUERY_HEADS, KV_HEADS = 4, 2


def _output_columns(value_factor: np.ndarray, hidden: int) -> np.ndarray:
    """Per value row factor -> per o_proj column factor (each query head reads its kv head's values)."""
    head_dim = hidden // QUERY_HEADS
    per_kv = value_factor.reshape(KV_HEADS, head_dim)
    return np.concatenate([per_kv[h // (QUERY_HEADS // KV_HEADS)] for h in range(QUERY_HEADS)])


def default_vocab(size: int = 400) -> list[str]:
    return [f"w{i}" for i in range(size)]


def write_model(folder: Path, params: Params, vocab: list[str] | None = None, dtype: str = "float32") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    embed = params["model.embed_tokens.weight"]
    layers = 1 + max(int(name.split(".")[2]) for name in params if name.startswith("model.layers."))
    inner_name = next(n for n in params if "up_proj" in n or "experts.0.w3" in n)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": embed.shape[0],
        "hidden_size": embed.shape[1],
        "intermediate_size": params[inner_name].shape[0],
        "num_hidden_layers": layers,
        # q_proj is [hidden, hidden] and k/v_proj [hidden // 2, hidden]: 4 query heads, 2 key/value heads
        "num_attention_heads": QUERY_HEADS,
        "num_key_value_heads": KV_HEADS,
        "torch_dtype": dtype,
    }
    (folder / "config.json").write_text(json.dumps(config))
    vocab = vocab if vocab is not None else default_vocab(embed.shape[0])
    tokenizer = {
        "version": "1.0",
        "model": {"type": "WordLevel", "vocab": {t: i for i, t in enumerate(vocab)}, "unk_token": vocab[0]},
    }
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    save_file(
        {k: np.ascontiguousarray(v.astype(dtype)) for k, v in params.items()},
        str(folder / "model.safetensors"),
    )
    return folder


# --- transforms ----------------------------------------------------------------------------------


def layer_names(params: Params, layer: int) -> list[str]:
    return [n for n in params if n.startswith(f"model.layers.{layer}.")]


def permute_units(params: Params, rng: np.random.Generator) -> Params:
    """Function-preserving: permute every MLP's hidden units."""
    out = dict(params)
    for name in params:
        if name.endswith("mlp.up_proj.weight"):
            prefix = name[: -len("up_proj.weight")]
            perm = rng.permutation(params[name].shape[0])
            out[prefix + "up_proj.weight"] = params[prefix + "up_proj.weight"][perm]
            out[prefix + "gate_proj.weight"] = params[prefix + "gate_proj.weight"][perm]
            out[prefix + "down_proj.weight"] = params[prefix + "down_proj.weight"][:, perm]
    return out


def flip_unit_signs(params: Params, rng: np.random.Generator) -> Params:
    """Function-preserving: flip the sign of random MLP units' up rows and down columns."""
    out = dict(params)
    for name in params:
        if name.endswith("mlp.up_proj.weight"):
            prefix = name[: -len("up_proj.weight")]
            signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), params[name].shape[0])
            out[prefix + "up_proj.weight"] = params[prefix + "up_proj.weight"] * signs[:, None]
            out[prefix + "down_proj.weight"] = params[prefix + "down_proj.weight"] * signs[None, :]
    return out


def permute_heads(params: Params, rng: np.random.Generator) -> Params:
    """Function-preserving: permute the key/value heads of every layer (with their query-head groups)."""
    out = dict(params)
    for name in params:
        if name.endswith("self_attn.v_proj.weight"):
            prefix = name[: -len("v_proj.weight")]
            hidden = params[prefix + "q_proj.weight"].shape[1]
            head_dim, group = hidden // QUERY_HEADS, QUERY_HEADS // KV_HEADS
            kv_order = rng.permutation(KV_HEADS)
            q_order = np.concatenate([np.arange(g * group, (g + 1) * group) for g in kv_order])
            kv_rows = (kv_order[:, None] * head_dim + np.arange(head_dim)).reshape(-1)
            q_rows = (q_order[:, None] * head_dim + np.arange(head_dim)).reshape(-1)
            out[prefix + "k_proj.weight"] = params[prefix + "k_proj.weight"][kv_rows]
            out[prefix + "v_proj.weight"] = params[prefix + "v_proj.weight"][kv_rows]
            out[prefix + "q_proj.weight"] = params[prefix + "q_proj.weight"][q_rows]
            out[prefix + "o_proj.weight"] = params[prefix + "o_proj.weight"][:, q_rows]
    return out


def flip_value_signs(params: Params, rng: np.random.Generator) -> Params:
    """Function-preserving: flip random value dimensions (a v_proj row and the o_proj columns reading it)."""
    out = dict(params)
    for name in params:
        if name.endswith("self_attn.v_proj.weight"):
            prefix = name[: -len("v_proj.weight")]
            signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), params[name].shape[0])
            hidden = params[prefix + "o_proj.weight"].shape[0]
            out[name] = params[name] * signs[:, None]
            out[prefix + "o_proj.weight"] = params[prefix + "o_proj.weight"] * _output_columns(signs, hidden)
    return out


def rotate_residual(params: Params, rng: np.random.Generator, signs_only: bool = False) -> Params:
    """Function-preserving residual permutation + sign flips (norm gains folded into the next weights)."""
    hidden = params["model.embed_tokens.weight"].shape[1]
    perm = rng.permutation(hidden)
    signs = rng.choice([-1.0, 1.0], hidden).astype(np.float32)
    out: Params = {}
    for name, value in params.items():
        if name == "model.embed_tokens.weight" or name == "lm_head.weight":
            out[name] = value[:, perm] * signs
        elif name.endswith(
            ("q_proj.weight", "k_proj.weight", "v_proj.weight", "up_proj.weight", "gate_proj.weight")
        ):
            norm = "input_layernorm" if "self_attn" in name else "post_attention_layernorm"
            gain = params[name.split("self_attn")[0].split("mlp")[0] + norm + ".weight"]
            out[name] = (value * gain)[:, perm] * signs
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            out[name] = value[perm] * signs[:, None]
        elif name.endswith("layernorm.weight"):
            out[name] = np.ones_like(value)
        elif name == "model.norm.weight":
            out[name] = value[perm]
        else:
            out[name] = value
    return out


def fine_tune(params: Params, rng: np.random.Generator, scale: float = 0.2) -> Params:
    return {
        n: (v + scale * v.std() * rng.standard_normal(v.shape).astype(np.float32)) for n, v in params.items()
    }


def drop_layers(params: Params, keep: list[int]) -> Params:
    out = {n: v for n, v in params.items() if not n.startswith("model.layers.")}
    for new, old in enumerate(keep):
        for name in layer_names(params, old):
            out[name.replace(f"model.layers.{old}.", f"model.layers.{new}.", 1)] = params[name]
    return out
