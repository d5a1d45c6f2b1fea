"""The architecture card (L1): what a model is, from its tensors, its config.json, or both (pure).

``card_from_tensors`` counts parameters from the tensors a reader lists (names and shapes only, no
data) and takes layer counts and sizes from config.json, GGUF metadata or, failing both, the tensors
themselves. ``card_from_config`` lays out the tensors the config implies
(:mod:`modeltrace.inspect.layouts`) and counts them with the same rules, so the two agree on the
same model. Conventions (also in :data:`CONVENTIONS`, which ``inspect --json`` prints):

- total parameters: every weight matrix, norm and bias; all routed experts; tied embeddings once;
  multi-token-prediction (MTP) modules excluded and reported as ``mtp_params``.
- active parameters per token: everything but the routed experts, plus ``experts_per_token`` routed
  experts in each MoE layer. Both the input embedding and the output head count as active (as
  Moonshot, Alibaba and Mistral count theirs). Makers that count otherwise are compared on the
  card's two other figures: ``active_params_excluding_input_embedding`` (DeepSeek, OpenAI) and
  ``active_params_excluding_embeddings``, without the output head either (Z.ai).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modeltrace.inspect.config_check import Layout, shape_disagreements, weights_win
from modeltrace.inspect.dimensions import Dimensions, dims_from_config, dims_from_gguf, filled_from
from modeltrace.inspect.field_layout import describe, read_fields
from modeltrace.inspect.layouts import config_tensor_shapes, text_config
from modeltrace.inspect.param_count import CountHints, ParamCount, count_parameters, role_of
from modeltrace.inspect.towers import Tower, merge_towers, split_towers, towers_from_config
from modeltrace.types import TensorInfo

CONVENTIONS: dict[str, str] = {
    "total_params": "every weight, norm and bias; all routed experts; tied embeddings counted once; "
    "multi-token-prediction modules excluded (see mtp_params); quantisation scales excluded; packed "
    "4-bit values counted one per value",
    "active_params": "parameters one token passes through: all but the routed experts, plus "
    "experts.per_token routed experts per MoE layer; input embedding and output head included",
    "activation_rate": "active_params / total_params",
    "embedding_params": "input token embedding only",
    "head_params": "output projection to the vocabulary (0 when tied to the input embedding)",
    "active_params_excluding_input_embedding": "active_params - embedding_params: the convention of "
    "DeepSeek (V3 and R1 '37B', V3.2) and OpenAI (gpt-oss-120b '5.1B')",
    "active_params_excluding_embeddings": "active_params - embedding_params - head_params: the "
    "convention of Z.ai (GLM-4.5 '32B', GLM-5 '40B')",
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
class ArchitectureCard:
    counted_from: str  # "tensors" or "config" (where total_params / active_params come from)
    dims: Dimensions
    experts: ExpertCounts | None  # None for a dense model
    total_params: int | None
    active_params: int | None
    embedding_params: int | None = None
    head_params: int | None = None
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
    def active_params_excluding_input_embedding(self) -> int | None:
        """Active parameters as DeepSeek and OpenAI count them (see :data:`CONVENTIONS`)."""
        if self.active_params is None or self.embedding_params is None:
            return None
        return self.active_params - self.embedding_params

    @property
    def active_params_excluding_embeddings(self) -> int | None:
        """Active parameters without the input embedding and the output head, as Z.ai counts them."""
        without_input = self.active_params_excluding_input_embedding
        if without_input is None or self.head_params is None:
            return None
        return without_input - self.head_params

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
            "head_params": self.head_params,
            "active_params_excluding_input_embedding": self.active_params_excluding_input_embedding,
            "active_params_excluding_embeddings": self.active_params_excluding_embeddings,
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


def _counted(count: ParamCount, dims: Dimensions) -> dict[str, Any]:
    """The card's fields that come from a parameter count, whether of a config or of tensors."""
    return {
        "experts": _experts(count, dims),
        "total_params": count.total,
        "active_params": count.active,
        "embedding_params": count.embedding,
        "head_params": count.head,
        "mtp_params": count.mtp,
    }


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
        **_counted(count, dims),
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
        dims = filled_from(dims, gguf_dims)
    first_pass = count_parameters(text_tensors, _hints(dims))
    from_tensors = _dims_from_tensors(text_tensors, first_pass)
    dims, notes = weights_win(dims, from_tensors)
    dims = filled_from(dims, from_tensors)
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
        **_counted(count, dims),
        tensor_count=len(listed),
        total_bytes=sum(info.nbytes for info in listed),
        dtypes=dict(Counter(info.dtype for info in listed).most_common()),
        config_total_params=config_total,
        config_active_params=config_active,
        notes=tuple(notes),
        towers=merge_towers(towers_from_config(config), tower_counts),
    )
