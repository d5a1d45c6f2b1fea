"""The zoo's transformers as pure functions of a parameter dictionary (torch, imported on demand).

``logits(params, config, tokens)`` runs either architecture of :mod:`modeltrace.zoo.arch` from
tensors keyed by their Hugging Face names, so training, LoRA, distillation and the function-
preservation checks all use the very dictionaries the files are written from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modeltrace.zoo._torch import require_torch
from modeltrace.zoo.arch import ArchConfig, Params, layer_prefix

torch = require_torch()
functional = torch.nn.functional
Tensor = Any  # torch.Tensor, spelled loosely so this module type-checks without torch stubs


def to_torch(params: Params, requires_grad: bool = False) -> dict[str, Tensor]:
    return {
        name: torch.tensor(value, dtype=torch.float32).requires_grad_(requires_grad)
        for name, value in params.items()
    }


def to_numpy(tensors: Mapping[str, Tensor]) -> Params:
    return {name: tensor.detach().cpu().numpy().astype(np.float32) for name, tensor in tensors.items()}


def _rms_norm(x: Tensor, gain: Tensor, eps: float) -> Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rotary(config: ArchConfig, length: int) -> tuple[Tensor, Tensor]:
    """cos/sin tables ``[length, head_dim]`` in the Hugging Face Llama layout (two halves)."""
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def _attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Causal attention over ``[batch, heads, time, head_dim]``."""
    return functional.scaled_dot_product_attention(q, k, v, is_causal=True)


def _llama_mlp(p: Mapping[str, Tensor], prefix: str, config: ArchConfig, h: Tensor) -> Tensor:
    if not config.num_experts:
        gate = h @ p[prefix + "mlp.gate_proj.weight"].T
        up = h @ p[prefix + "mlp.up_proj.weight"].T
        return (functional.silu(gate) * up) @ p[prefix + "mlp.down_proj.weight"].T
    # Mixtral routing: softmax over all experts, keep the top k, renormalise their weights.
    moe = prefix + "block_sparse_moe."
    router = torch.softmax(h @ p[moe + "gate.weight"].T, dim=-1)
    top_weights, top_experts = router.topk(config.experts_per_token, dim=-1)
    top_weights = top_weights / top_weights.sum(-1, keepdim=True)
    out = torch.zeros_like(h)
    for expert in range(config.num_experts):  # every expert on every token: tiny models, simpler code
        e = f"{moe}experts.{expert}."
        weight = (top_weights * (top_experts == expert)).sum(-1, keepdim=True)
        hidden = functional.silu(h @ p[e + "w1.weight"].T) * (h @ p[e + "w3.weight"].T)
        out = out + weight * (hidden @ p[e + "w2.weight"].T)
    return out


def _llama_logits(p: Mapping[str, Tensor], config: ArchConfig, tokens: Tensor) -> Tensor:
    batch, length = tokens.shape
    heads, kv_heads, dim = config.num_heads, config.num_kv_heads, config.head_dim
    cos, sin = _rotary(config, length)
    x = p["model.embed_tokens.weight"][tokens]
    for layer in range(config.num_layers):
        prefix = layer_prefix(config, layer)
        h = _rms_norm(x, p[prefix + "input_layernorm.weight"], config.norm_eps)
        q = (h @ p[prefix + "self_attn.q_proj.weight"].T).view(batch, length, heads, dim).transpose(1, 2)
        k = (h @ p[prefix + "self_attn.k_proj.weight"].T).view(batch, length, kv_heads, dim).transpose(1, 2)
        v = (h @ p[prefix + "self_attn.v_proj.weight"].T).view(batch, length, kv_heads, dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        # Grouped-query attention: query head j reads key/value head j // (heads / kv_heads).
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
        attended = _attention(q, k, v).transpose(1, 2).reshape(batch, length, heads * dim)
        x = x + attended @ p[prefix + "self_attn.o_proj.weight"].T
        h = _rms_norm(x, p[prefix + "post_attention_layernorm.weight"], config.norm_eps)
        x = x + _llama_mlp(p, prefix, config, h)
    x = _rms_norm(x, p["model.norm.weight"], config.norm_eps)
    return x @ p["lm_head.weight"].T


def _gpt2_logits(p: Mapping[str, Tensor], config: ArchConfig, tokens: Tensor) -> Tensor:
    batch, length = tokens.shape
    heads, dim, width = config.num_heads, config.head_dim, config.hidden_size
    x = p["transformer.wte.weight"][tokens] + p["transformer.wpe.weight"][:length]
    for layer in range(config.num_layers):
        prefix = layer_prefix(config, layer)

        def norm(name: str, value: Tensor, prefix: str = prefix) -> Tensor:
            return functional.layer_norm(
                value, (width,), p[prefix + name + ".weight"], p[prefix + name + ".bias"], config.norm_eps
            )

        qkv = norm("ln_1", x) @ p[prefix + "attn.c_attn.weight"] + p[prefix + "attn.c_attn.bias"]
        q, k, v = (part.view(batch, length, heads, dim).transpose(1, 2) for part in qkv.split(width, dim=-1))
        attended = _attention(q, k, v).transpose(1, 2).reshape(batch, length, width)
        x = x + attended @ p[prefix + "attn.c_proj.weight"] + p[prefix + "attn.c_proj.bias"]
        hidden = norm("ln_2", x) @ p[prefix + "mlp.c_fc.weight"] + p[prefix + "mlp.c_fc.bias"]
        hidden = functional.gelu(hidden, approximate="tanh")
        x = x + hidden @ p[prefix + "mlp.c_proj.weight"] + p[prefix + "mlp.c_proj.bias"]
    x = functional.layer_norm(
        x, (width,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], config.norm_eps
    )
    return x @ p["transformer.wte.weight"].T


def logits(params: Mapping[str, Tensor], config: ArchConfig, tokens: Tensor) -> Tensor:
    """Next-token logits ``[batch, time, vocab]`` for ``tokens`` ``[batch, time]`` (int64)."""
    if config.family == "gpt2":
        return _gpt2_logits(params, config, tokens)
    return _llama_logits(params, config, tokens)


def numpy_logits(params: Params, config: ArchConfig, tokens: np.ndarray) -> np.ndarray:
    """Convenience for checks: logits of numpy parameters on numpy tokens, as float64."""
    with torch.no_grad():
        out = logits(to_torch(params), config, torch.as_tensor(tokens, dtype=torch.long))
    return out.double().numpy()


def lm_loss(params: Mapping[str, Tensor], config: ArchConfig, windows: Tensor) -> Tensor:
    """Mean next-token cross-entropy on ``[batch, length + 1]`` windows."""
    out = logits(params, config, windows[:, :-1])
    return functional.cross_entropy(out.reshape(-1, out.shape[-1]), windows[:, 1:].reshape(-1))
