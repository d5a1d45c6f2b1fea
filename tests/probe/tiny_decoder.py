"""Tiny Llama-family model folders written with numpy, and an independent torch forward pass.

``write_tiny_model`` writes config.json, model.safetensors (``safetensors.numpy``) and a
WordLevel tokenizer.json whose vocabulary covers the behavioural prompts, so every prompt has
real token ids. ``torch_logits`` re-implements the Hugging Face ``modeling_llama`` /
``modeling_qwen2`` / ``modeling_qwen3`` / ``modeling_mixtral`` formulas in float64 torch, written
separately from modeltrace's numpy code, as the reference the numpy forward pass is checked against.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from modeltrace.probe.prompts import BEHAVIOUR_PROMPTS

SPECIALS = ("<unk>", "<s>", "</s>")


def prompt_vocabulary() -> list[str]:
    """Specials, then every lower-cased word and punctuation run of the behavioural prompts."""
    from tokenizers import pre_tokenizers

    splitter = pre_tokenizers.Whitespace()
    words: dict[str, None] = {}
    for text in (*BEHAVIOUR_PROMPTS, "user: assistant:"):
        for piece, _ in splitter.pre_tokenize_str(text.lower()):
            words.setdefault(piece)
    return [*SPECIALS, *words]


def write_tokenizer(folder: Path, vocabulary: list[str]) -> None:
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, processors

    ids = {word: index for index, word in enumerate(vocabulary)}
    tokenizer = Tokenizer(models.WordLevel(ids, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens([AddedToken("<s>", special=True), AddedToken("</s>", special=True)])
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer.save(str(folder / "tokenizer.json"))


def tiny_config(model_type: str = "llama", **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "model_type": model_type,
        "vocab_size": len(prompt_vocabulary()),
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
    }
    if model_type == "mixtral":
        config |= {"num_local_experts": 4, "num_experts_per_tok": 2}
    return config | overrides


def random_tensors(config: dict[str, Any], seed: int, biases: bool = False) -> dict[str, np.ndarray]:
    """Weights with roughly unit-variance activations, by Hugging Face name."""
    rng = np.random.default_rng(seed)
    hidden, inner = config["hidden_size"], config["intermediate_size"]
    head_dim = config.get("head_dim") or hidden // config["num_attention_heads"]
    q_width = config["num_attention_heads"] * head_dim
    kv_width = config["num_key_value_heads"] * head_dim

    def dense(rows: int, columns: int) -> np.ndarray:
        return (rng.standard_normal((rows, columns)) / math.sqrt(columns)).astype(np.float32)

    def norm(width: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(width)).astype(np.float32)

    tensors = {
        "model.embed_tokens.weight": rng.standard_normal((config["vocab_size"], hidden)).astype(np.float32),
        "model.norm.weight": norm(hidden),
    }
    if not config["tie_word_embeddings"]:
        tensors["lm_head.weight"] = dense(config["vocab_size"], hidden)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        tensors |= {
            p + "input_layernorm.weight": norm(hidden),
            p + "post_attention_layernorm.weight": norm(hidden),
            p + "self_attn.q_proj.weight": dense(q_width, hidden),
            p + "self_attn.k_proj.weight": dense(kv_width, hidden),
            p + "self_attn.v_proj.weight": dense(kv_width, hidden),
            p + "self_attn.o_proj.weight": dense(hidden, q_width),
        }
        if biases:
            for name, width in (("q_proj", q_width), ("k_proj", kv_width), ("v_proj", kv_width)):
                tensors[f"{p}self_attn.{name}.bias"] = (0.3 * rng.standard_normal(width)).astype(np.float32)
        if config["model_type"] == "qwen3":
            tensors |= {
                p + "self_attn.q_norm.weight": norm(head_dim),
                p + "self_attn.k_norm.weight": norm(head_dim),
            }
        if config["model_type"] == "mixtral":
            tensors[p + "block_sparse_moe.gate.weight"] = dense(config["num_local_experts"], hidden)
            for e in range(config["num_local_experts"]):
                q = f"{p}block_sparse_moe.experts.{e}."
                tensors |= {q + "w1.weight": dense(inner, hidden), q + "w3.weight": dense(inner, hidden),
                            q + "w2.weight": dense(hidden, inner)}  # fmt: skip
        else:
            tensors |= {p + "mlp.gate_proj.weight": dense(inner, hidden),
                        p + "mlp.up_proj.weight": dense(inner, hidden),
                        p + "mlp.down_proj.weight": dense(hidden, inner)}  # fmt: skip
    return tensors


def write_tiny_model(
    folder: Path,
    config: dict[str, Any],
    tensors: dict[str, np.ndarray],
    chat_template: str | None = None,
) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file(tensors, str(folder / "model.safetensors"))
    write_tokenizer(folder, prompt_vocabulary())
    if chat_template is not None:
        tokenizer_config = {"chat_template": chat_template, "bos_token": "<s>", "eos_token": "</s>"}
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder


def perturbed(tensors: dict[str, np.ndarray], scale: float, seed: int) -> dict[str, np.ndarray]:
    """A 'fine-tune': every tensor plus noise of ``scale`` times its own standard deviation."""
    rng = np.random.default_rng(seed)
    return {
        name: (value + scale * value.std() * rng.standard_normal(value.shape)).astype(np.float32)
        for name, value in tensors.items()
    }


# --- the torch reference -------------------------------------------------------------------------


def torch_logits(config: dict[str, Any], tensors: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """Logits (T, vocab) for every position, float64, following the Hugging Face modeling code."""
    import torch
    from torch.nn import functional

    t = {name: torch.from_numpy(value).double() for name, value in tensors.items()}
    hidden, heads, kv_heads = (
        config["hidden_size"],
        config["num_attention_heads"],
        config["num_key_value_heads"],
    )
    head_dim = config.get("head_dim") or hidden // heads
    eps = config["rms_norm_eps"]

    def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rotate_half(x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
        return torch.cat((-x2, x1), dim=-1)

    inv_freq = 1.0 / (config["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    scaling = config.get("rope_scaling")
    if scaling and scaling.get("rope_type") == "llama3":  # transformers _compute_llama3_parameters
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > old / low, inv_freq / factor, inv_freq)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
        is_medium = ~(wavelen < old / high) * ~(wavelen > old / low)
        inv_freq = torch.where(is_medium, smoothed, inv_freq_llama)
    length = len(ids)
    freqs = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None], emb.sin()[None]  # (1, T, D), broadcast over heads

    x = t["model.embed_tokens.weight"][torch.tensor(ids)]
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, t[p + "input_layernorm.weight"])

        def project(name: str, h: torch.Tensor = h, p: str = p) -> torch.Tensor:
            return functional.linear(h, t[f"{p}self_attn.{name}.weight"], t.get(f"{p}self_attn.{name}.bias"))

        q = project("q_proj").view(length, heads, head_dim).transpose(0, 1)  # (heads, T, D)
        k = project("k_proj").view(length, kv_heads, head_dim).transpose(0, 1)
        v = project("v_proj").view(length, kv_heads, head_dim).transpose(0, 1)
        if config["model_type"] == "qwen3":
            q, k = (
                rms_norm(q, t[p + "self_attn.q_norm.weight"]),
                rms_norm(k, t[p + "self_attn.k_norm.weight"]),
            )
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(heads // kv_heads, dim=0)
        v = v.repeat_interleave(heads // kv_heads, dim=0)
        attention = functional.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]
        x = x + functional.linear(
            attention.transpose(0, 1).reshape(length, heads * head_dim), t[p + "self_attn.o_proj.weight"]
        )
        h = rms_norm(x, t[p + "post_attention_layernorm.weight"])
        if config["model_type"] == "mixtral":
            routing = functional.softmax(functional.linear(h, t[p + "block_sparse_moe.gate.weight"]), dim=-1)
            weights, chosen = torch.topk(routing, config["num_experts_per_tok"], dim=-1)
            weights = weights / weights.sum(dim=-1, keepdim=True)
            out = torch.zeros_like(h)
            for e in range(config["num_local_experts"]):
                q_ = f"{p}block_sparse_moe.experts.{e}."
                expert = functional.linear(
                    functional.silu(functional.linear(h, t[q_ + "w1.weight"]))
                    * functional.linear(h, t[q_ + "w3.weight"]),
                    t[q_ + "w2.weight"],
                )
                out += (weights * (chosen == e)).sum(dim=-1, keepdim=True) * expert
            x = x + out
        else:
            gate, up = (
                functional.linear(h, t[p + "mlp.gate_proj.weight"]),
                functional.linear(h, t[p + "mlp.up_proj.weight"]),
            )
            x = x + functional.linear(functional.silu(gate) * up, t[p + "mlp.down_proj.weight"])
    x = rms_norm(x, t["model.norm.weight"])
    head = t.get("lm_head.weight", t["model.embed_tokens.weight"])
    return functional.linear(x, head).numpy()
