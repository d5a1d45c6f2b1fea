"""A small pure-numpy forward pass for Llama-family decoder-only language models.

It exists so that a local checkpoint can be a *reference* in the behavioural test (greedy next
token on a prompt set) without torch or an inference server. It covers the architectures that
share the Llama layout and Hugging Face tensor names:

* ``llama``, ``mistral``, ``qwen2``, ``qwen3``: RMSNorm, rotary position embeddings (RoPE,
  ``rope_theta``, optional ``linear`` / ``llama3`` frequency scaling), grouped-query attention,
  SwiGLU MLP, optional q/k/v/o biases (Qwen2 has q/k/v biases), optional per-head q/k RMSNorm
  (Qwen3), tied or untied LM head;
* ``mixtral``: the same attention with a sparse mixture-of-experts MLP (softmax router, top-k
  experts, weights renormalised over the chosen k).

Everything runs in float32 on the CPU, one prompt at a time, computing logits only where asked.
The formulas follow the Hugging Face ``modeling_*`` code (``rotate_half`` RoPE, RMSNorm in float32,
``repeat_kv``), which the tests check against an independent torch implementation.

This module knows nothing about files: :func:`parse_config` validates a ``config.json`` mapping,
:func:`tensor_shapes` says which tensors (by Hugging Face name) of which shapes the model needs,
and :class:`Decoder` runs on tensors already in memory (see :mod:`modeltrace.probe.local_model`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modeltrace.errors import UnsupportedFormatError

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "mixtral")


@dataclass(frozen=True)
class DecoderConfig:
    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: Mapping[str, Any] | None
    tie_word_embeddings: bool
    sliding_window: int | None
    num_experts: int = 0  # 0 = dense SwiGLU MLP
    experts_per_token: int = 0

    @property
    def qk_norm(self) -> bool:
        return self.model_type == "qwen3"


def _positive_int(config: Mapping[str, Any], key: str, path: Path | None, default: int | None = None) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UnsupportedFormatError(
            path, f"config.json field '{key}' must be a positive integer, got {value!r:.40}"
        )
    return value


def _positive_float(config: Mapping[str, Any], key: str, path: Path | None, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UnsupportedFormatError(
            path, f"config.json field '{key}' must be a positive number, got {value!r:.40}"
        )
    return float(value)


def parse_config(config: Mapping[str, Any], path: Path | None = None) -> DecoderConfig:
    """Validate a Hugging Face ``config.json`` (read from ``path``) for a model this module can run."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedFormatError(
            path,
            f"model_type {model_type!r:.40} is not supported by the local forward pass; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}. Serve the model behind an "
            "OpenAI-compatible server and pass its URL instead.",
        )
    activation = config.get("hidden_act", "silu")
    if activation != "silu":
        raise UnsupportedFormatError(path, f"hidden_act {activation!r:.40} is not supported (only 'silu')")
    hidden = _positive_int(config, "hidden_size", path)
    heads = _positive_int(config, "num_attention_heads", path)
    kv_heads = _positive_int(config, "num_key_value_heads", path, heads)
    if heads % kv_heads:
        raise UnsupportedFormatError(
            path, f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"
        )
    head_dim = config.get("head_dim") or hidden // heads
    head_dim = _positive_int({"head_dim": head_dim}, "head_dim", path)
    if head_dim % 2:
        raise UnsupportedFormatError(path, f"head_dim {head_dim} must be even for rotary embeddings")
    # transformers >= 5 moves rope_theta/rope_scaling into 'rope_parameters'.
    rope_parameters = config.get("rope_parameters") if isinstance(config.get("rope_parameters"), dict) else {}
    rope_theta = _positive_float({**rope_parameters, **config}, "rope_theta", path, 10000.0)
    rope_scaling = config.get("rope_scaling") or rope_parameters
    if not isinstance(rope_scaling, dict):
        raise UnsupportedFormatError(
            path, f"config.json field 'rope_scaling' is not an object: {rope_scaling!r:.40}"
        )
    rope_type = rope_scaling.get("rope_type", rope_scaling.get("type", "default"))
    if rope_type not in ("default", "linear", "llama3"):
        raise UnsupportedFormatError(
            path, f"rope scaling type {rope_type!r:.40} is not supported (default, linear, llama3)"
        )
    if rope_type != "default":
        _positive_float(rope_scaling, "factor", path, 1.0)
    if rope_type == "llama3":
        for key in ("low_freq_factor", "high_freq_factor", "original_max_position_embeddings"):
            _positive_float(rope_scaling, key, path, 0.0)
        if rope_scaling["high_freq_factor"] <= rope_scaling["low_freq_factor"]:
            raise UnsupportedFormatError(path, "rope_scaling high_freq_factor must exceed low_freq_factor")
    window = config.get("sliding_window") if config.get("use_sliding_window", True) else None
    experts = 0
    per_token = 0
    if model_type == "mixtral":
        experts = _positive_int(config, "num_local_experts", path)
        per_token = _positive_int(config, "num_experts_per_tok", path)
        if per_token > experts:
            raise UnsupportedFormatError(
                path, f"num_experts_per_tok {per_token} exceeds num_local_experts {experts}"
            )
    return DecoderConfig(
        model_type=str(model_type),
        vocab_size=_positive_int(config, "vocab_size", path),
        hidden_size=hidden,
        intermediate_size=_positive_int(config, "intermediate_size", path),
        num_layers=_positive_int(config, "num_hidden_layers", path),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        rms_norm_eps=_positive_float(config, "rms_norm_eps", path, 1e-6),
        rope_theta=rope_theta,
        rope_scaling=dict(rope_scaling) if rope_type != "default" else None,
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        sliding_window=window if isinstance(window, int) and window > 0 else None,
        num_experts=experts,
        experts_per_token=per_token,
    )


def tensor_shapes(config: DecoderConfig) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """(required, optional) tensors by Hugging Face name with their shapes.

    Optional ones are the biases some families carry (used when present) and ``lm_head.weight``
    when embeddings are tied (the embedding matrix is used when it is absent).
    """
    h, q_width, kv_width = (
        config.hidden_size,
        config.num_heads * config.head_dim,
        config.num_kv_heads * config.head_dim,
    )
    required: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (config.vocab_size, h),
        "model.norm.weight": (h,),
    }
    optional: dict[str, tuple[int, ...]] = {}
    (optional if config.tie_word_embeddings else required)["lm_head.weight"] = (config.vocab_size, h)
    for i in range(config.num_layers):
        p = f"model.layers.{i}."
        required |= {
            p + "input_layernorm.weight": (h,),
            p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (q_width, h),
            p + "self_attn.k_proj.weight": (kv_width, h),
            p + "self_attn.v_proj.weight": (kv_width, h),
            p + "self_attn.o_proj.weight": (h, q_width),
        }
        optional |= {
            p + "self_attn.q_proj.bias": (q_width,),
            p + "self_attn.k_proj.bias": (kv_width,),
            p + "self_attn.v_proj.bias": (kv_width,),
            p + "self_attn.o_proj.bias": (h,),
        }
        if config.qk_norm:
            required |= {
                p + "self_attn.q_norm.weight": (config.head_dim,),
                p + "self_attn.k_norm.weight": (config.head_dim,),
            }
        inner = config.intermediate_size
        if config.num_experts:
            required[p + "block_sparse_moe.gate.weight"] = (config.num_experts, h)
            for e in range(config.num_experts):
                q = f"{p}block_sparse_moe.experts.{e}."
                required |= {
                    q + "w1.weight": (inner, h),
                    q + "w3.weight": (inner, h),
                    q + "w2.weight": (h, inner),
                }
        else:
            required |= {
                p + "mlp.gate_proj.weight": (inner, h),
                p + "mlp.up_proj.weight": (inner, h),
                p + "mlp.down_proj.weight": (h, inner),
            }
    return required, optional


def rope_inverse_frequencies(config: DecoderConfig) -> np.ndarray:
    """RoPE inverse frequencies (float64), with Llama 3.x or linear scaling when configured."""
    dim = config.head_dim
    inverse = 1.0 / config.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    scaling = config.rope_scaling
    if scaling is None:
        return inverse
    factor = float(scaling.get("factor", 1.0))
    if scaling.get("rope_type", scaling.get("type")) == "linear":
        return inverse / factor  # positions divided by factor
    # "llama3": long wavelengths slowed down by `factor`, short ones kept, a smooth blend between.
    low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    old_context = float(scaling["original_max_position_embeddings"])
    wavelength = 2 * math.pi / inverse
    scaled = np.where(wavelength > old_context / low, inverse / factor, inverse)
    smooth = (old_context / wavelength - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelength >= old_context / high) & (wavelength <= old_context / low)
    return np.where(medium, blended, scaled)


def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """RoPE in the Hugging Face ``rotate_half`` layout: x (T, heads, D), cos/sin (T, 1, D)."""
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


class Decoder:
    """The forward pass over tensors in memory (float32, Hugging Face names, shapes checked by the loader)."""

    def __init__(self, config: DecoderConfig, tensors: Mapping[str, np.ndarray]) -> None:
        self.config = config
        self._t = {name: np.asarray(value, dtype=np.float32) for name, value in tensors.items()}
        self._inverse_frequencies = rope_inverse_frequencies(config)

    def _get(self, name: str) -> np.ndarray | None:
        return self._t.get(name)

    def _linear(self, x: np.ndarray, prefix: str) -> np.ndarray:
        out = x @ self._t[prefix + ".weight"].T
        bias = self._get(prefix + ".bias")
        return out if bias is None else out + bias

    def logits(self, ids: list[int] | np.ndarray, last_only: bool = True) -> np.ndarray:
        """Next-token logits: (vocab,) for the last position, or (T, vocab) for every position."""
        c = self.config
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or ids.size == 0:
            raise ValueError("logits() needs a non-empty 1-D sequence of token ids")
        if ids.min() < 0 or ids.max() >= c.vocab_size:
            raise ValueError(f"token id out of range 0..{c.vocab_size - 1}")
        length = ids.size
        if c.sliding_window is not None and length > c.sliding_window:
            raise ValueError(
                f"{length} tokens exceed the sliding window {c.sliding_window}, which is not implemented"
            )
        angles = np.outer(np.arange(length, dtype=np.float64), self._inverse_frequencies)
        angles = np.concatenate([angles, angles], axis=-1)
        cos = np.cos(angles).astype(np.float32)[:, None, :]
        sin = np.sin(angles).astype(np.float32)[:, None, :]
        mask = np.triu(np.full((length, length), -np.inf, dtype=np.float32), k=1)
        x = self._t["model.embed_tokens.weight"][ids]
        for i in range(c.num_layers):
            p = f"model.layers.{i}."
            x = x + self._attention(
                _rms_norm(x, self._t[p + "input_layernorm.weight"], c.rms_norm_eps), p, cos, sin, mask
            )
            h = _rms_norm(x, self._t[p + "post_attention_layernorm.weight"], c.rms_norm_eps)
            x = x + (self._experts(h, p) if c.num_experts else self._mlp(h, p + "mlp."))
        if last_only:
            x = x[-1:]
        x = _rms_norm(x, self._t["model.norm.weight"], c.rms_norm_eps)
        head = self._get("lm_head.weight")
        out = x @ (self._t["model.embed_tokens.weight"] if head is None else head).T
        return out[0] if last_only else out

    def greedy_next_token(self, ids: list[int]) -> int:
        return int(np.argmax(self.logits(ids)))

    def _attention(
        self, h: np.ndarray, p: str, cos: np.ndarray, sin: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:
        c = self.config
        length = h.shape[0]
        q = self._linear(h, p + "self_attn.q_proj").reshape(length, c.num_heads, c.head_dim)
        k = self._linear(h, p + "self_attn.k_proj").reshape(length, c.num_kv_heads, c.head_dim)
        v = self._linear(h, p + "self_attn.v_proj").reshape(length, c.num_kv_heads, c.head_dim)
        if c.qk_norm:  # Qwen3 normalises each head before the rotation
            q = _rms_norm(q, self._t[p + "self_attn.q_norm.weight"], c.rms_norm_eps)
            k = _rms_norm(k, self._t[p + "self_attn.k_norm.weight"], c.rms_norm_eps)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        group = c.num_heads // c.num_kv_heads  # each key/value head serves `group` query heads
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = np.einsum("thd,shd->hts", q, k) / np.float32(math.sqrt(c.head_dim)) + mask
        mixed = np.einsum("hts,shd->thd", _softmax(scores), v).reshape(length, c.num_heads * c.head_dim)
        return self._linear(mixed, p + "self_attn.o_proj")

    def _mlp(self, h: np.ndarray, p: str) -> np.ndarray:
        gated = _silu(h @ self._t[p + "gate_proj.weight"].T) * (h @ self._t[p + "up_proj.weight"].T)
        return gated @ self._t[p + "down_proj.weight"].T

    def _experts(self, h: np.ndarray, p: str) -> np.ndarray:
        c = self.config
        p += "block_sparse_moe."
        probabilities = _softmax(h @ self._t[p + "gate.weight"].T)  # (T, experts)
        chosen = np.argsort(-probabilities, axis=-1, kind="stable")[:, : c.experts_per_token]
        weights = np.take_along_axis(probabilities, chosen, axis=-1)
        weights /= weights.sum(axis=-1, keepdims=True)
        out = np.zeros_like(h)
        for token in range(h.shape[0]):
            for expert, weight in zip(chosen[token], weights[token], strict=True):
                e = f"{p}experts.{expert}."
                row = h[token]
                gated = _silu(row @ self._t[e + "w1.weight"].T) * (row @ self._t[e + "w3.weight"].T)
                out[token] += weight * (gated @ self._t[e + "w2.weight"].T)
        return out
