"""The sizes of a network (layers, widths, heads, experts, vocabulary) from config.json or GGUF metadata.

Each size is looked up under every name model code uses for it (:mod:`modeltrace.inspect.config_keys`)
and validated (configs are untrusted input). :class:`Dimensions` feeds the architecture card
(:mod:`modeltrace.inspect.card`) and the fingerprint's value-row geometry.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modeltrace.inspect import config_keys
from modeltrace.inspect.field_layout import structure
from modeltrace.inspect.layouts import ConfigView, text_config


@dataclass(frozen=True)
class Dimensions:
    """Sizes of the network; any may be unknown (None)."""

    architecture: str | None = None  # config model_type or GGUF general.architecture
    architectures: tuple[str, ...] = ()  # config "architectures" (model class names)
    text_model_type: str | None = None  # model_type of the language part of a multimodal config
    layers: int | None = None
    hidden_size: int | None = None
    intermediate_size: int | None = None
    attention_heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    vocab_size: int | None = None
    context_length: int | None = None
    attention: str | None = None  # "mha", "gqa", "mqa" or "mla"
    routed_experts: int | None = None
    shared_experts: int = 0
    experts_per_token: int | None = None
    mtp_layers: int = 0
    packed_bits: int = 4
    #: What the config's fields state about the structure: MLA ranks, sparse-attention indexer,
    #: dense layers among MoE ones, MTP layers (see :func:`modeltrace.inspect.field_layout.structure`).
    structure: Mapping[str, Any] = field(default_factory=dict)


def _attention_kind(heads: int | None, kv_heads: int | None, latent: bool) -> str | None:
    if latent:
        return "mla"
    if heads is None or kv_heads is None:
        return None
    return "mha" if kv_heads == heads else ("mqa" if kv_heads == 1 else "gqa")


def _packed_bits(config: Mapping[str, Any]) -> int:
    """Bits per value of packed-integer weights (GPTQ ``bits``, compressed-tensors ``num_bits``)."""
    quant = config.get("quantization_config")
    if not isinstance(quant, dict):
        return 4
    bits = quant.get("bits")
    for group in (
        (quant.get("config_groups") or {}).values() if isinstance(quant.get("config_groups"), dict) else ()
    ):
        weights = group.get("weights") if isinstance(group, dict) else None
        if isinstance(weights, dict) and isinstance(weights.get("num_bits"), int):
            bits = weights["num_bits"]
    return bits if isinstance(bits, int) and bits in (2, 3, 4, 8) else 4


def dims_from_config(config: Mapping[str, Any]) -> Dimensions:
    text = text_config(config)
    view = ConfigView(text)
    heads = view.int(*config_keys.HEADS)
    multi_query = view.flag("multi_query_attention", False)
    kv_heads = view.int(*config_keys.KV_HEADS) or (
        view.int("multi_query_group_num") if multi_query else None
    ) or heads  # fmt: skip
    hidden = view.int(*config_keys.HIDDEN)
    latent = view.int("kv_lora_rank") is not None
    head_dim = view.int(*config_keys.HEAD_DIM)
    if head_dim is None and latent:
        head_dim = (view.int("qk_nope_head_dim") or 0) + (view.int("qk_rope_head_dim") or 0) or None
    if head_dim is None and hidden and heads:
        head_dim = hidden // heads
    shared = view.int("n_shared_experts", default=0) or (
        1 if view.int("shared_expert_intermediate_size") else 0
    )
    model_type, text_model_type = config.get("model_type"), text.get("model_type")
    classes = config.get("architectures") or ()
    return Dimensions(
        architecture=model_type if isinstance(model_type, str) else None,
        architectures=tuple(str(name) for name in classes) if isinstance(classes, list) else (),
        text_model_type=text_model_type if text is not config and isinstance(text_model_type, str) else None,
        layers=view.int(*config_keys.LAYERS),
        hidden_size=hidden,
        intermediate_size=view.int(*config_keys.INTERMEDIATE),
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=view.int(*config_keys.VOCAB),
        context_length=view.int(*config_keys.CONTEXT),
        attention=_attention_kind(heads, kv_heads, latent),
        routed_experts=view.int(*config_keys.ROUTED_EXPERTS),
        shared_experts=shared,
        experts_per_token=view.int(*config_keys.EXPERTS_PER_TOKEN),
        mtp_layers=view.int(*config_keys.MTP_LAYERS, default=0) or 0,
        packed_bits=_packed_bits(text),
        structure=structure(text),
    )


def _metadata_int(metadata: Mapping[str, Any], key: str) -> int | None:
    value = metadata.get(key)
    # GGUF readers may hand back numpy integers; both are numbers.Integral
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        return None
    return int(value)


def dims_from_gguf(metadata: Mapping[str, Any]) -> Dimensions | None:
    """Dimensions from GGUF ``{arch}.*`` keys; None when the metadata names no architecture."""
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        return None

    def get(key: str) -> int | None:
        return _metadata_int(metadata, f"{arch}.{key}")

    heads, kv_heads = get("attention.head_count"), get("attention.head_count_kv")
    kv_heads = kv_heads or heads
    latent = get("attention.kv_lora_rank") is not None
    hidden = get("embedding_length")
    head_dim = get("attention.key_length") or (hidden // heads if hidden and heads else None)
    tokens = metadata.get("tokenizer.ggml.tokens")
    vocab = get("vocab_size") or (len(tokens) if isinstance(tokens, (list, tuple)) else None)
    nextn = get("nextn_predict_layers") or 0
    block_count = get("block_count")
    return Dimensions(
        architecture=arch,
        # llama.cpp counts next-token-prediction blocks in block_count; the card counts main layers.
        layers=block_count - nextn if block_count is not None and block_count >= nextn else block_count,
        hidden_size=hidden,
        intermediate_size=get("feed_forward_length"),
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        context_length=get("context_length"),
        attention=_attention_kind(heads, kv_heads, latent),
        routed_experts=get("expert_count") or None,
        shared_experts=get("expert_shared_count") or 0,
        experts_per_token=get("expert_used_count") or None,
        mtp_layers=nextn,
    )


def filled_from(primary: Dimensions, fallback: Dimensions) -> Dimensions:
    """``primary`` with its unknown (None) fields filled from ``fallback``."""
    values = {
        name: getattr(fallback, name) if getattr(primary, name) in (None, ()) else getattr(primary, name)
        for name in primary.__dataclass_fields__
    }
    return Dimensions(**values)
