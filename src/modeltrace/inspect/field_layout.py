"""A decoder's tensor layout read from its config's *fields*, whatever its ``model_type`` is called.

New architectures ship as new ``model_type`` names (``deepseek_v32``, ``glm_moe_dsa``, ...) long before
any table of names knows them, but their config.json states what they are made of. This module reads
those statements and lays out the Hugging Face tensors they imply:

- attention: multi-head latent attention (MLA) when ``kv_lora_rank`` is given (``q_lora_rank``,
  ``qk_nope_head_dim``, ``qk_rope_head_dim``, ``v_head_dim``), else grouped-query attention from
  ``num_attention_heads``, ``num_key_value_heads`` and ``head_dim``; ``attention_bias`` and
  ``use_qk_norm`` add biases and per-head query/key norms;
- a sparse-attention indexer (DeepSeek Sparse Attention: ``index_n_heads``, ``index_head_dim``;
  ``indexer_types`` marks layers that reuse another layer's selection and hold no indexer);
- mixture of experts: routed experts (``n_routed_experts`` / ``num_local_experts`` / ``num_experts``,
  each ``moe_intermediate_size`` wide), shared experts (``n_shared_experts`` fused into one MLP, or
  one ``shared_expert_intermediate_size`` expert with its own gate), and which layers are MoE
  (``mlp_layer_types``, else ``first_k_dense_replace`` + ``moe_layer_freq``, else
  ``mlp_only_layers`` + ``decoder_sparse_step``);
- multi-token-prediction layers (``num_nextn_predict_layers``), laid out after the main layers.

Every inference is listed by :func:`describe` so the card can say what it assumed. When a field the
layout needs is missing (hidden size, layers, vocabulary, heads, an MLP width) :func:`read_fields`
returns None and the caller reports the count as unknown instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modeltrace.errors import FormatError, ResourceLimitError
from modeltrace.formats import limits
from modeltrace.inspect import config_keys

Shapes = dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class Mla:
    q_lora: int | None  # None: queries projected directly from the hidden state (DeepSeek-V2-Lite)
    kv_lora: int
    nope: int  # per-head key dimensions without rotary embedding
    rope: int  # rotary key dimensions, shared by all heads
    v_dim: int  # per-head value dimensions


@dataclass(frozen=True)
class Indexer:
    heads: int
    head_dim: int
    skipped_layers: frozenset[int]  # layers that reuse another layer's top-k and hold no indexer


@dataclass(frozen=True)
class Experts:
    routed: int
    inner: int  # width of one routed expert
    shared: int  # shared experts (DeepSeek: fused into one MLP of ``shared * inner`` units)
    shared_inner: int  # width of a Qwen-style shared expert (with its own sigmoid gate); 0 if none
    moe_layers: frozenset[int]
    router_bias: bool  # DeepSeek-V3's per-expert load-balancing bias (``topk_method: noaux_tc``)


@dataclass(frozen=True)
class DecoderFields:
    hidden: int
    layers: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    dense_inner: int | None  # width of a dense MLP (None when every layer is MoE)
    mla: Mla | None
    indexer: Indexer | None
    experts: Experts | None
    mtp_layers: int
    attention_bias: bool
    qk_norm: bool
    tie_embeddings: bool


#: Largest value accepted for a size field (configs are untrusted input; same bound as ConfigView).
MAX_CONFIG_INT = 1 << 24


def _int(config: Mapping[str, Any], *keys: str) -> int | None:
    """The first of ``keys`` that holds a positive int (booleans and other types are not sizes)."""
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            if value > MAX_CONFIG_INT:
                raise FormatError(
                    None, f"config key '{key}' is {value!r:.40}; expected an integer up to {MAX_CONFIG_INT:,}"
                )
            return value
    return None


def _moe_layers(config: Mapping[str, Any], layers: int, total: int) -> frozenset[int]:
    """Which of the ``total`` layers (main layers, then multi-token-prediction layers) are MoE."""
    if total > limits.MAX_TENSORS:  # a hostile config could ask for a set of millions of layers
        raise ResourceLimitError(
            None, f"config implies {total:,} layers, over the {limits.MAX_TENSORS:,} limit"
        )
    types = config.get("mlp_layer_types")
    if isinstance(types, list) and len(types) == layers:
        sparse = {i for i, kind in enumerate(types) if kind in ("sparse", "moe")}
        if layers - 1 in sparse:  # MTP layers repeat the last layer's kind
            sparse.update(range(layers, total))
        return frozenset(sparse)
    if "first_k_dense_replace" in config or "moe_layer_freq" in config:  # DeepSeek's schedule
        first_dense = _int(config, "first_k_dense_replace") or 0
        frequency = _int(config, "moe_layer_freq") or 1
        return frozenset(i for i in range(total) if i >= first_dense and i % frequency == 0)
    step = _int(config, "decoder_sparse_step") or 1  # Qwen-MoE's schedule
    dense = config.get("mlp_only_layers")
    dense_set = {i for i in dense if isinstance(i, int)} if isinstance(dense, list) else set()
    return frozenset(i for i in range(total) if i not in dense_set and (i + 1) % step == 0)


def _experts(config: Mapping[str, Any], layers: int, total: int) -> Experts | None:
    routed = _int(config, *config_keys.ROUTED_EXPERTS)
    if not routed:
        return None
    inner = _int(config, "moe_intermediate_size", "intermediate_size")
    if inner is None:
        return None
    return Experts(
        routed=routed,
        inner=inner,
        shared=_int(config, "n_shared_experts") or 0,
        shared_inner=_int(config, "shared_expert_intermediate_size") or 0,
        moe_layers=_moe_layers(config, layers, total),
        router_bias=config.get("topk_method") == "noaux_tc",
    )


def _mla(config: Mapping[str, Any]) -> Mla | None:
    kv_lora = _int(config, "kv_lora_rank")
    if kv_lora is None:
        return None
    nope, rope, v_dim = (_int(config, key) for key in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"))
    if nope is None or rope is None or v_dim is None:
        return None
    return Mla(_int(config, "q_lora_rank"), kv_lora, nope, rope, v_dim)


def _indexer(config: Mapping[str, Any]) -> Indexer | None:
    heads, head_dim = _int(config, "index_n_heads"), _int(config, "index_head_dim")
    if heads is None or head_dim is None:
        return None
    types = config.get("indexer_types")
    if not isinstance(types, list):
        return Indexer(heads, head_dim, frozenset())
    return Indexer(heads, head_dim, frozenset(i for i, kind in enumerate(types) if kind == "shared"))


def _kv_heads(config: Mapping[str, Any]) -> int | None:
    if config.get("multi_query_attention") is True:  # ChatGLM's name for grouped-query attention
        return _int(config, "multi_query_group_num", "num_key_value_heads")
    return _int(config, *config_keys.KV_HEADS)


def structure(config: Mapping[str, Any]) -> dict[str, Any]:
    """The structural facts the fields state, for the card (JSON-ready; absent parts left out)."""
    layers = _int(config, *config_keys.LAYERS)
    out: dict[str, Any] = {}
    mla = _mla(config)
    if mla is not None:
        out["mla"] = {"q_lora_rank": mla.q_lora, "kv_lora_rank": mla.kv_lora, "qk_nope_head_dim": mla.nope,
                      "qk_rope_head_dim": mla.rope, "v_head_dim": mla.v_dim}  # fmt: skip
    indexer = _indexer(config)
    if indexer is not None:
        out["indexer"] = {
            "heads": indexer.heads,
            "head_dim": indexer.head_dim,
            "topk": _int(config, "index_topk"),
            "layers_without": sorted(indexer.skipped_layers),
        }
    experts = _experts(config, layers, layers) if layers else None
    if experts is not None and layers:
        out["dense_layers"] = [i for i in range(layers) if i not in experts.moe_layers]
    mtp = _int(config, *config_keys.MTP_LAYERS)
    if mtp:
        out["mtp_layers"] = mtp
    return out


def read_fields(config: Mapping[str, Any]) -> DecoderFields | None:
    """What the config's fields say about the decoder; None when a size the layout needs is missing."""
    hidden = _int(config, *config_keys.HIDDEN)
    layers = _int(config, *config_keys.LAYERS)
    vocab = _int(config, *config_keys.VOCAB)
    heads = _int(config, *config_keys.HEADS)
    if hidden is None or layers is None or vocab is None or heads is None:
        return None
    mtp_layers = _int(config, *config_keys.MTP_LAYERS) or 0
    experts = _experts(config, layers, layers + mtp_layers)
    dense_inner = _int(config, *config_keys.INTERMEDIATE)
    every_layer_moe = experts is not None and experts.moe_layers.issuperset(range(layers + mtp_layers))
    if dense_inner is None and not every_layer_moe:
        return None
    return DecoderFields(
        hidden=hidden,
        layers=layers,
        vocab=vocab,
        heads=heads,
        kv_heads=_kv_heads(config) or heads,
        head_dim=_int(config, *config_keys.HEAD_DIM) or hidden // heads,
        dense_inner=dense_inner,
        mla=_mla(config),
        indexer=_indexer(config),
        experts=experts,
        mtp_layers=mtp_layers,
        attention_bias=config.get("attention_bias") is True,
        qk_norm=config.get("use_qk_norm") is True,
        tie_embeddings=config.get("tie_word_embeddings") is True,
    )


def describe(fields: DecoderFields) -> list[str]:
    """One phrase per structural fact read from the fields (for the card's notes)."""
    facts = []
    if fields.mla is not None:
        m = fields.mla
        q = f"q_lora_rank {m.q_lora}" if m.q_lora else "direct queries"
        facts.append(
            f"multi-head latent attention ({q}, kv_lora_rank {m.kv_lora}, per-head key {m.nope}+{m.rope} "
            f"rotary, value {m.v_dim})"
        )
    else:
        heads = f"{fields.heads} heads / {fields.kv_heads} key-value heads"
        facts.append(f"attention {heads} of {fields.head_dim}")
    if fields.indexer is not None:
        i = fields.indexer
        shared = len(i.skipped_layers)
        where = f", absent from {shared} layers sharing a selection" if shared else ""
        facts.append(f"sparse-attention indexer ({i.heads} heads of {i.head_dim}{where})")
    if fields.experts is not None:
        e = fields.experts
        shared = e.shared or (1 if e.shared_inner else 0)
        facts.append(
            f"{e.routed} routed experts of width {e.inner} + {shared} shared in "
            f"{len([i for i in e.moe_layers if i < fields.layers])} of {fields.layers} layers"
        )
    if fields.mtp_layers:
        facts.append(f"{fields.mtp_layers} multi-token-prediction layer(s)")
    return facts


# --- layout --------------------------------------------------------------------------------------


def _linear(shapes: Shapes, name: str, out_features: int, in_features: int, bias: bool = False) -> None:
    shapes[f"{name}.weight"] = (out_features, in_features)
    if bias:
        shapes[f"{name}.bias"] = (out_features,)


def _gated_mlp(shapes: Shapes, prefix: str, hidden: int, inner: int) -> None:
    _linear(shapes, f"{prefix}.gate_proj", inner, hidden)
    _linear(shapes, f"{prefix}.up_proj", inner, hidden)
    _linear(shapes, f"{prefix}.down_proj", hidden, inner)


def _mla_attention(shapes: Shapes, prefix: str, f: DecoderFields, mla: Mla) -> None:
    """DeepSeek multi-head latent attention; ``kv_b_proj`` rows are, per head, ``nope`` key rows then
    ``v_dim`` value rows (the layout :mod:`modeltrace.fingerprint.mla` reads values from)."""
    per_head_q = mla.nope + mla.rope
    if mla.q_lora:
        _linear(shapes, f"{prefix}.q_a_proj", mla.q_lora, f.hidden, f.attention_bias)
        shapes[f"{prefix}.q_a_layernorm.weight"] = (mla.q_lora,)
        _linear(shapes, f"{prefix}.q_b_proj", f.heads * per_head_q, mla.q_lora)
    else:
        _linear(shapes, f"{prefix}.q_proj", f.heads * per_head_q, f.hidden)
    _linear(shapes, f"{prefix}.kv_a_proj_with_mqa", mla.kv_lora + mla.rope, f.hidden, f.attention_bias)
    shapes[f"{prefix}.kv_a_layernorm.weight"] = (mla.kv_lora,)
    _linear(shapes, f"{prefix}.kv_b_proj", f.heads * (mla.nope + mla.v_dim), mla.kv_lora)
    _linear(shapes, f"{prefix}.o_proj", f.hidden, f.heads * mla.v_dim, f.attention_bias)


def _gqa_attention(shapes: Shapes, prefix: str, f: DecoderFields) -> None:
    bias = f.attention_bias
    _linear(shapes, f"{prefix}.q_proj", f.heads * f.head_dim, f.hidden, bias)
    _linear(shapes, f"{prefix}.k_proj", f.kv_heads * f.head_dim, f.hidden, bias)
    _linear(shapes, f"{prefix}.v_proj", f.kv_heads * f.head_dim, f.hidden, bias)
    _linear(shapes, f"{prefix}.o_proj", f.hidden, f.heads * f.head_dim, bias)
    if f.qk_norm:
        shapes[f"{prefix}.q_norm.weight"] = (f.head_dim,)
        shapes[f"{prefix}.k_norm.weight"] = (f.head_dim,)


def _indexer_tensors(shapes: Shapes, prefix: str, f: DecoderFields, indexer: Indexer) -> None:
    """DeepSeek-V3.2's lightning indexer: queries from the query latent, one shared key head."""
    query_input = f.mla.q_lora if f.mla is not None and f.mla.q_lora else f.hidden
    _linear(shapes, f"{prefix}.wq_b", indexer.heads * indexer.head_dim, query_input)
    _linear(shapes, f"{prefix}.wk", indexer.head_dim, f.hidden)
    shapes[f"{prefix}.k_norm.weight"] = (indexer.head_dim,)  # a LayerNorm: gain and bias
    shapes[f"{prefix}.k_norm.bias"] = (indexer.head_dim,)
    _linear(shapes, f"{prefix}.weights_proj", indexer.heads, f.hidden)


def _mlp(shapes: Shapes, prefix: str, f: DecoderFields, index: int) -> None:
    e = f.experts
    if e is None or index not in e.moe_layers:
        _gated_mlp(shapes, prefix, f.hidden, f.dense_inner or 0)
        return
    _linear(shapes, f"{prefix}.gate", e.routed, f.hidden)
    if e.router_bias:
        shapes[f"{prefix}.gate.e_score_correction_bias"] = (e.routed,)
    for expert in range(e.routed):
        _gated_mlp(shapes, f"{prefix}.experts.{expert}", f.hidden, e.inner)
    if e.shared:  # DeepSeek stores its shared experts fused as one wider MLP
        _gated_mlp(shapes, f"{prefix}.shared_experts", f.hidden, e.inner * e.shared)
    elif e.shared_inner:  # Qwen2-MoE: one shared expert with its own sigmoid gate
        _gated_mlp(shapes, f"{prefix}.shared_expert", f.hidden, e.shared_inner)
        _linear(shapes, f"{prefix}.shared_expert_gate", 1, f.hidden)


def _layer(shapes: Shapes, prefix: str, f: DecoderFields, index: int) -> None:
    shapes[f"{prefix}.input_layernorm.weight"] = (f.hidden,)
    shapes[f"{prefix}.post_attention_layernorm.weight"] = (f.hidden,)
    if f.mla is not None:
        _mla_attention(shapes, f"{prefix}.self_attn", f, f.mla)
    else:
        _gqa_attention(shapes, f"{prefix}.self_attn", f)
    if f.indexer is not None and index not in f.indexer.skipped_layers:
        _indexer_tensors(shapes, f"{prefix}.self_attn.indexer", f, f.indexer)
    _mlp(shapes, f"{prefix}.mlp", f, index)


def layout(f: DecoderFields) -> Shapes:
    """Hugging Face tensor names and shapes of the decoder ``f`` describes (DeepSeek-style MTP layers
    after the main ones, each a full layer plus its own embedding, projection, norms and head)."""
    per_layer = 32 + 3 * (f.experts.routed if f.experts else 0)
    if (f.layers + f.mtp_layers) * per_layer > limits.MAX_TENSORS:
        raise ResourceLimitError(
            None, f"config implies {f.layers + f.mtp_layers:,} layers x {per_layer:,} tensors, over the "
            f"{limits.MAX_TENSORS:,}-tensor limit",
        )  # fmt: skip
    shapes: Shapes = {"model.embed_tokens.weight": (f.vocab, f.hidden)}
    for index in range(f.layers):
        _layer(shapes, f"model.layers.{index}", f, index)
    shapes["model.norm.weight"] = (f.hidden,)
    if not f.tie_embeddings:
        shapes["lm_head.weight"] = (f.vocab, f.hidden)
    for index in range(f.layers, f.layers + f.mtp_layers):
        prefix = f"model.layers.{index}"
        _layer(shapes, prefix, f, index)
        shapes[f"{prefix}.embed_tokens.weight"] = (f.vocab, f.hidden)
        shapes[f"{prefix}.enorm.weight"] = (f.hidden,)
        shapes[f"{prefix}.hnorm.weight"] = (f.hidden,)
        _linear(shapes, f"{prefix}.eh_proj", f.hidden, 2 * f.hidden)
        shapes[f"{prefix}.shared_head.norm.weight"] = (f.hidden,)
        shapes[f"{prefix}.shared_head.head.weight"] = (f.vocab, f.hidden)
    return shapes
