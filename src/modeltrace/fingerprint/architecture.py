"""The architecture card (L1): what a model is, from its tensors, its config.json, or both (pure).

``card_from_tensors`` counts parameters from the tensors a reader lists (names and shapes only, no
data) and takes layer counts and sizes from config.json, GGUF metadata or, failing both, the tensors
themselves. ``card_from_config`` lays out the tensors the config implies
(:mod:`modeltrace.fingerprint.layouts`) and counts them with the same rules, so the two agree on the
same model. Conventions (also in :data:`CONVENTIONS`, which ``inspect --json`` prints):

- total parameters: every weight matrix, norm and bias; all routed experts; tied embeddings once;
  multi-token-prediction (MTP) modules excluded and reported as ``mtp_params``.
- active parameters per token: everything but the routed experts, plus ``experts_per_token`` routed
  experts in each MoE layer. Both the input embedding and the output head count as active (as
  DeepSeek counts its 37B); ``embedding_params`` is reported so the input embedding can be taken
  out (OpenAI's 5.1B for gpt-oss-120b leaves it out).
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modeltrace.fingerprint.config_check import Layout, shape_disagreements, weights_win
from modeltrace.fingerprint.field_layout import describe, read_fields, structure
from modeltrace.fingerprint.layouts import ConfigView, config_tensor_shapes, text_config
from modeltrace.fingerprint.param_count import CountHints, ParamCount, count_parameters, role_of
from modeltrace.fingerprint.towers import Tower, merge_towers, split_towers, towers_from_config
from modeltrace.types import TensorInfo

CONVENTIONS: dict[str, str] = {
    "total_params": "every weight, norm and bias; all routed experts; tied embeddings counted once; "
    "multi-token-prediction modules excluded (see mtp_params); quantisation scales excluded; packed "
    "4-bit values counted one per value",
    "active_params": "parameters one token passes through: all but the routed experts, plus "
    "experts.per_token routed experts per MoE layer; input embedding and output head included",
    "activation_rate": "active_params / total_params",
    "embedding_params": "input token embedding only; subtract it for makers that leave it out of "
    "'active' (OpenAI for gpt-oss)",
}

#: Architecture families by config ``model_type`` and GGUF ``general.architecture``.
FAMILIES: dict[str, str] = {
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "qwen"), "llama"),
    "mixtral": "mixtral",
    **dict.fromkeys(("qwen2_moe", "qwen3_moe", "qwen2moe", "qwen3moe"), "qwen-moe"),
    **dict.fromkeys(("deepseek_v2", "deepseek_v3", "kimi_k2", "deepseek2"), "deepseek-mla-moe"),
    **dict.fromkeys(("gpt_oss", "gpt-oss"), "gpt-oss"),
    **dict.fromkeys(("chatglm", "chatglm2", "chatglm3"), "chatglm"),
}


@dataclass(frozen=True)
class ExpertCounts:
    routed: int  # experts per MoE layer
    shared: int  # always-on experts per MoE layer
    per_token: int | None  # routed experts each token is sent to
    moe_layers: int
    params_per_expert: int | None  # one routed expert in one layer

    def as_dict(self) -> dict[str, int | None]:
        return {
            "routed": self.routed,
            "shared": self.shared,
            "per_token": self.per_token,
            "moe_layers": self.moe_layers,
            "params_per_expert": self.params_per_expert,
        }


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
    #: dense layers among MoE ones, MTP layers (see :func:`modeltrace.fingerprint.field_layout.structure`).
    structure: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ArchitectureCard:
    counted_from: str  # "tensors" or "config" (where total_params / active_params come from)
    dims: Dimensions
    experts: ExpertCounts | None  # None for a dense model
    total_params: int | None
    active_params: int | None
    embedding_params: int | None = None
    mtp_params: int | None = None
    tensor_count: int | None = None
    total_bytes: int | None = None
    dtypes: dict[str, int] = field(default_factory=dict)  # tensor count per storage dtype
    config_total_params: int | None = None  # from config.json, when weights were counted too
    config_active_params: int | None = None
    notes: tuple[str, ...] = ()
    towers: tuple[Tower, ...] = ()  # vision/audio towers of a multimodal wrapper, counted apart

    @property
    def activation_rate(self) -> float | None:
        if self.total_params and self.active_params is not None:
            return self.active_params / self.total_params
        return None

    @property
    def family(self) -> str | None:
        name = self.dims.text_model_type or self.dims.architecture
        if name is None:
            return None
        if name == "llama" and self.experts is not None:  # GGUF stores Mixtral as "llama"
            return "mixtral"
        if name in FAMILIES:
            return FAMILIES[name]
        # An unknown model_type: the fields name DeepSeek's design when they state latent attention.
        if self.dims.attention == "mla":
            return "deepseek-mla-moe" if self.experts is not None else "deepseek-mla"
        return None

    def as_dict(self) -> dict[str, Any]:
        d = self.dims
        return {
            "architecture": d.architecture,
            "architectures": list(d.architectures),
            "text_model_type": d.text_model_type,
            "family": self.family,
            "counted_from": self.counted_from,
            "total_params": self.total_params,
            "active_params": self.active_params,
            "activation_rate": self.activation_rate,
            "embedding_params": self.embedding_params,
            "mtp_params": self.mtp_params,
            "layers": d.layers,
            "hidden_size": d.hidden_size,
            "intermediate_size": d.intermediate_size,
            "attention": d.attention,
            "attention_heads": d.attention_heads,
            "kv_heads": d.kv_heads,
            "head_dim": d.head_dim,
            "vocab_size": d.vocab_size,
            "context_length": d.context_length,
            "experts": self.experts.as_dict() if self.experts else None,
            "structure": dict(d.structure),
            "towers": [tower.as_dict() for tower in self.towers],
            "tensor_count": self.tensor_count,
            "total_bytes": self.total_bytes,
            "dtypes": dict(self.dtypes),
            "config_total_params": self.config_total_params,
            "config_active_params": self.config_active_params,
            "notes": list(self.notes),
            "conventions": dict(CONVENTIONS),
        }


# --- dimensions from config.json and GGUF metadata -------------------------------------------------


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
    heads = view.int("num_attention_heads", "n_head", "n_heads")
    multi_query = view.flag("multi_query_attention", False)
    kv_heads = view.int("num_key_value_heads", "n_kv_heads") or (
        view.int("multi_query_group_num") if multi_query else None
    ) or heads  # fmt: skip
    hidden = view.int("hidden_size", "d_model", "n_embd", "dim")
    latent = view.int("kv_lora_rank") is not None
    head_dim = view.int("head_dim", "kv_channels")
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
        layers=view.int("num_hidden_layers", "num_layers", "n_layer", "n_layers"),
        hidden_size=hidden,
        intermediate_size=view.int("intermediate_size", "ffn_hidden_size", "n_inner"),
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=view.int("vocab_size", "padded_vocab_size", "n_vocab"),
        context_length=view.int(
            "max_position_embeddings", "seq_length", "n_positions", "max_sequence_length"
        ),
        attention=_attention_kind(heads, kv_heads, latent),
        routed_experts=view.int("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts"),
        shared_experts=shared,
        experts_per_token=view.int("num_experts_per_tok", "experts_per_token", "moe_topk"),
        mtp_layers=view.int("num_nextn_predict_layers", default=0) or 0,
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


def _merge(primary: Dimensions, fallback: Dimensions) -> Dimensions:
    """``primary`` with its unknown (None) fields filled from ``fallback``."""
    values = {
        name: getattr(fallback, name) if getattr(primary, name) in (None, ()) else getattr(primary, name)
        for name in primary.__dataclass_fields__
    }
    return Dimensions(**values)


def _dims_from_tensors(tensors: list[TensorInfo], count: ParamCount) -> Dimensions:
    """Last resort: layers from layer indices, vocab and width from the embedding matrix."""
    embedding = next(
        (t for t in tensors if role_of(t.name, CountHints()) == "embedding" and len(t.shape) == 2), None
    )
    vocab = hidden = None
    if embedding is not None:  # vocabulary is the longer axis whatever order the reader lists
        vocab, hidden = max(embedding.shape), min(embedding.shape)
    return Dimensions(
        layers=count.layer_count, hidden_size=hidden, vocab_size=vocab, routed_experts=count.routed_experts
    )


# --- cards ---------------------------------------------------------------------------------------


def _hints(dims: Dimensions) -> CountHints:
    return CountHints(
        main_layers=dims.layers,
        mtp_layers=dims.mtp_layers,
        routed_experts=dims.routed_experts,
        experts_per_token=dims.experts_per_token,
        packed_bits=dims.packed_bits,
    )


def _experts(count: ParamCount, dims: Dimensions) -> ExpertCounts | None:
    if not count.routed:
        return None
    return ExpertCounts(
        routed=count.routed_experts or dims.routed_experts or 0,
        shared=dims.shared_experts,
        per_token=dims.experts_per_token,
        moe_layers=count.moe_layers,
        params_per_expert=count.routed_per_expert,
    )


def _config_notes(config: Mapping[str, Any], exact: bool) -> list[str]:
    notes = []
    if not exact:
        fields = read_fields(text_config(config))
        facts = "; ".join(describe(fields)) if fields is not None else ""
        notes.append(
            f"model_type {text_config(config).get('model_type')!r} has no layout checked against a real "
            f"checkpoint; tensors laid out from the config's fields ({facts})"
        )
    for kind in towers_from_config(config):
        notes.append(
            f"{kind} tower not counted from config (its layout is defined by the model's own code); "
            "its sizes are listed under towers"
        )
    return notes


def _count_config(
    config: Mapping[str, Any], dims: Dimensions, laid_out: Layout
) -> tuple[ParamCount | None, list[str]]:
    """Count the tensors the config implies (``laid_out``: :func:`config_tensor_shapes` of it)."""
    if laid_out is None:
        model_type = text_config(config).get("model_type")
        return None, [
            f"architecture unknown: model_type {model_type!r} is not one modeltrace knows and the config "
            "lacks the fields to lay it out (hidden size, layers, vocabulary, heads, MLP width); "
            "parameters not counted"
        ]
    shapes, exact = laid_out
    tensors = [TensorInfo(name, shape, "", 0, "") for name, shape in shapes.items()]
    return count_parameters(tensors, _hints(dims)), _config_notes(config, exact)


def card_from_config(config: Mapping[str, Any]) -> ArchitectureCard:
    """The card of a model known only by its config.json (no weights)."""
    dims = dims_from_config(config)
    count, notes = _count_config(config, dims, config_tensor_shapes(config))
    towers = merge_towers(towers_from_config(config), {})
    if count is None:
        return ArchitectureCard("config", dims, None, None, None, notes=tuple(notes), towers=towers)
    if count.mtp:
        notes.append(f"{count.mtp:,} multi-token-prediction parameters not counted in the totals")
    return ArchitectureCard(
        counted_from="config",
        dims=dims,
        experts=_experts(count, dims),
        total_params=count.total,
        active_params=count.active,
        embedding_params=count.embedding,
        mtp_params=count.mtp,
        notes=tuple(notes),
        towers=towers,
    )


def card_from_tensors(
    tensors: Iterable[TensorInfo],
    config: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    logical: Iterable[TensorInfo] | None = None,
) -> ArchitectureCard:
    """The card of a model from its tensor list (pass the stored tensors, scales included, so that
    bytes and dtypes are what is on disk), plus config.json and format metadata when present.
    ``logical``: the reader's logical tensors (quantised weights unpacked, their scales folded in),
    counted instead of the stored ones when given."""
    listed = list(tensors)
    counted = list(logical) if logical is not None else listed
    text_tensors, tower_tensors = split_towers(counted)
    dims = Dimensions()
    if config:
        dims = dims_from_config(config)
    gguf_dims = dims_from_gguf(metadata) if metadata else None
    if gguf_dims is not None:
        dims = _merge(dims, gguf_dims)
    first_pass = count_parameters(text_tensors, _hints(dims))
    from_tensors = _dims_from_tensors(text_tensors, first_pass)
    dims, notes = weights_win(dims, from_tensors)
    dims = _merge(dims, from_tensors)
    count = count_parameters(text_tensors, _hints(dims))
    if config:
        laid_out = config_tensor_shapes(config)
        notes.extend(shape_disagreements(laid_out, text_tensors))
    if count.routed and count.active is None:
        notes.append("routed experts found but experts-per-token unknown: active parameters not computed")
    if count.mtp:
        notes.append(f"{count.mtp:,} multi-token-prediction parameters not counted in the totals")
    config_total = config_active = None
    if config:
        config_count, _ = _count_config(config, dims, laid_out)
        if config_count is not None:
            config_total, config_active = config_count.total, config_count.active
            if config_total != count.total:
                notes.append(
                    f"config.json implies {config_total:,} parameters but the weights hold {count.total:,}"
                )
    tower_counts = {kind: (count_parameters(part, CountHints()).total, len(part))
                    for kind, part in tower_tensors.items()}  # fmt: skip
    return ArchitectureCard(
        counted_from="tensors",
        dims=dims,
        experts=_experts(count, dims),
        total_params=count.total,
        active_params=count.active,
        embedding_params=count.embedding,
        mtp_params=count.mtp,
        tensor_count=len(listed),
        total_bytes=sum(info.nbytes for info in listed),
        dtypes=dict(Counter(info.dtype for info in listed).most_common()),
        config_total_params=config_total,
        config_active_params=config_active,
        notes=tuple(notes),
        towers=merge_towers(towers_from_config(config), tower_counts),
    )
