"""The zoo's two architectures as plain data: hyper-parameters, HF config.json, tensor names and shapes.

No torch here: parameters are numpy arrays keyed by their Hugging Face names, so the transforms,
quantisers and file writers work on the same dictionaries the files hold.

* ``llama``: RMSNorm, rotary positions (HF ``rotate_half`` layout), grouped-query attention,
  SwiGLU MLP (gate/up/down), untied LM head. With ``num_experts > 0`` the MLP is a Mixtral-style
  mixture of experts (``block_sparse_moe.gate`` router, experts ``w1`` gate, ``w2`` down, ``w3`` up).
* ``gpt2``: LayerNorm with biases, learned positions, GELU MLP with biases, fused QKV stored
  as ``Conv1D`` ([in, out], transposed relative to ``nn.Linear``), LM head tied to ``wte``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class ArchConfig:
    family: str  # "llama" or "gpt2"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    max_positions: int = 64
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    num_experts: int = 0  # 0: dense MLP
    experts_per_token: int = 2

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def replace(self, **changes: Any) -> ArchConfig:
        return dataclasses.replace(self, **changes)

    def hf_config(self) -> dict[str, Any]:
        """The ``config.json`` Hugging Face ``transformers`` would write for this model."""
        if self.family == "gpt2":
            return {
                "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
                "vocab_size": self.vocab_size, "n_embd": self.hidden_size, "n_layer": self.num_layers,
                "n_head": self.num_heads, "n_inner": self.intermediate_size,
                "n_positions": self.max_positions, "n_ctx": self.max_positions,
                "activation_function": "gelu_new", "layer_norm_epsilon": self.norm_eps,
                "tie_word_embeddings": True, "torch_dtype": "float32",
            }  # fmt: skip
        config: dict[str, Any] = {
            "architectures": ["MixtralForCausalLM" if self.num_experts else "LlamaForCausalLM"],
            "model_type": "mixtral" if self.num_experts else "llama",
            "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size, "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads, "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim, "max_position_embeddings": self.max_positions,
            "rms_norm_eps": self.norm_eps, "rope_theta": self.rope_theta, "hidden_act": "silu",
            "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
        }  # fmt: skip
        if self.num_experts:
            config["num_local_experts"] = self.num_experts
            config["num_experts_per_tok"] = self.experts_per_token
        return config


def layer_prefix(config: ArchConfig, layer: int) -> str:
    return f"transformer.h.{layer}." if config.family == "gpt2" else f"model.layers.{layer}."


def parameter_shapes(config: ArchConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of the model, by HF name, in the order the files store them."""
    h, f, v = config.hidden_size, config.intermediate_size, config.vocab_size
    kv = config.num_kv_heads * config.head_dim
    shapes: dict[str, tuple[int, ...]] = {}
    if config.family == "gpt2":
        shapes["transformer.wte.weight"] = (v, h)
        shapes["transformer.wpe.weight"] = (config.max_positions, h)
        for layer in range(config.num_layers):
            p = layer_prefix(config, layer)
            shapes.update({
                p + "ln_1.weight": (h,), p + "ln_1.bias": (h,),
                p + "attn.c_attn.weight": (h, 3 * h), p + "attn.c_attn.bias": (3 * h,),
                p + "attn.c_proj.weight": (h, h), p + "attn.c_proj.bias": (h,),
                p + "ln_2.weight": (h,), p + "ln_2.bias": (h,),
                p + "mlp.c_fc.weight": (h, f), p + "mlp.c_fc.bias": (f,),
                p + "mlp.c_proj.weight": (f, h), p + "mlp.c_proj.bias": (h,),
            })  # fmt: skip
        shapes["transformer.ln_f.weight"] = (h,)
        shapes["transformer.ln_f.bias"] = (h,)
        return shapes
    shapes["model.embed_tokens.weight"] = (v, h)
    for layer in range(config.num_layers):
        p = layer_prefix(config, layer)
        shapes.update({
            p + "input_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, h),
            p + "post_attention_layernorm.weight": (h,),
        })  # fmt: skip
        if config.num_experts:
            shapes[p + "block_sparse_moe.gate.weight"] = (config.num_experts, h)
            for expert in range(config.num_experts):
                e = p + f"block_sparse_moe.experts.{expert}."
                shapes.update({e + "w1.weight": (f, h), e + "w2.weight": (h, f), e + "w3.weight": (f, h)})
        else:
            shapes.update({
                p + "mlp.gate_proj.weight": (f, h), p + "mlp.up_proj.weight": (f, h),
                p + "mlp.down_proj.weight": (h, f),
            })  # fmt: skip
    shapes["model.norm.weight"] = (h,)
    shapes["lm_head.weight"] = (v, h)
    return shapes


def init_params(config: ArchConfig, seed: int) -> Params:
    """A fresh random initialisation (GPT-2 scheme: N(0, 0.02), residual writers scaled by
    1/sqrt(2L), norm gains 1, biases 0), deterministic given ``seed``."""
    rng = np.random.default_rng([seed, 7003])
    residual_std = 0.02 / np.sqrt(2 * config.num_layers)
    params: Params = {}
    for name, shape in parameter_shapes(config).items():
        if name.endswith("bias"):
            params[name] = np.zeros(shape, np.float32)
        elif len(shape) == 1:
            params[name] = np.ones(shape, np.float32)
        else:
            writes_residual = any(key in name for key in ("o_proj", "down_proj", "c_proj", ".w2."))
            std = residual_std if writes_residual else 0.02
            params[name] = rng.normal(0.0, std, size=shape).astype(np.float32)
    return params


def config_from_hf(config: dict[str, Any]) -> ArchConfig:
    """The :class:`ArchConfig` of a zoo model's ``config.json`` (inverse of ``hf_config``)."""
    if config.get("model_type") == "gpt2":
        return ArchConfig(
            "gpt2", config["vocab_size"], config["n_embd"], config["n_inner"], config["n_layer"],
            config["n_head"], config["n_head"], config["n_positions"], config["layer_norm_epsilon"],
        )  # fmt: skip
    return ArchConfig(
        "llama", config["vocab_size"], config["hidden_size"], config["intermediate_size"],
        config["num_hidden_layers"], config["num_attention_heads"], config["num_key_value_heads"],
        config["max_position_embeddings"], config["rms_norm_eps"], config.get("rope_theta", 10000.0),
        config.get("num_local_experts", 0), config.get("num_experts_per_tok", 2),
    )  # fmt: skip
