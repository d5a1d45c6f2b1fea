"""Which tensor plays which role: the token embedding; per layer (and expert), the MLP input
projections whose rows are hidden units (``up``, and ``gate`` for gated MLPs); per layer, the
attention value projection whose rows are value dimensions (:func:`find_value_projections`).

Names are used when they say it: Hugging Face Llama/Mistral/Qwen/Mixtral/Gemma/Phi (``up_proj``,
``fc1``), GPT-2 ``c_fc``, BERT/RoBERTa/XLM-R/DeBERTa/MPNet ``intermediate.dense``, GPT-NeoX/Falcon
``dense_h_to_4h``, T5 ``DenseReluDense.wi`` (``wi_0`` gate, ``wi_1`` up), GGUF ``blk.N.ffn_up``. Value
projections: ``v_proj``, BERT ``attention.self.value``, DeBERTa ``value_proj``, MPNet ``attention.attn.v``,
T5 ``SelfAttention.v``, fused ``c_attn``/``qkv_proj``. Falcon's and GPT-NeoX's fused
``query_key_value`` interleave heads (grouped, or ``[head, q/k/v, dim]``): their value rows are not read
(the MLP and residual-dimension tests still apply). Encoder-decoder models (T5) number decoder layers
from :data:`DECODER_LAYER_OFFSET` so that they never collide with encoder layers.

A GGUF MoE layer stacks its routed experts in one 3-D tensor ``blk.N.ffn_up_exps``
``[n_expert, units, hidden]``; each slice becomes one expert block, the same as a Hugging Face
``experts.E.up_proj``, so a GGUF conversion compares expert by expert.

Exported ONNX graphs often name weights ``onnx::MatMul_470`` or ``val_49``; then roles come from
the order of the matrix products (the reader's graph when it offers one, else storage order) and
their shapes: in each layer the MLP input projections have shape ``[H, I]`` (``[I, H]`` in
``nn.Linear`` layout) and the block closes with the down projection ``[I, H]``. Names are a
convenience here, never evidence.

Canonical layout is ``nn.Linear``'s ``[out, in]``: rows of ``up``/``gate`` are hidden units.
``transposed`` marks tensors stored ``[in, out]`` (GPT-2 Conv1D, ONNX MatMul initialisers).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modeltrace.formats.onnx_graph import Graph
from modeltrace.types import TensorInfo

_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blk|blocks|block)\.(\d+)\.(.*)$")
#: Decoder layers of an encoder-decoder model (T5 ``decoder.block.N``) are numbered from here.
DECODER_LAYER_OFFSET = 1000
_EXPERT = re.compile(r"experts\.(\d+)\.")
_EMBEDDING_NAMES = (
    "embed_tokens.weight",
    "wte.weight",
    "word_embeddings.weight",
    "token_embd.weight",
    "tok_embeddings.weight",
    "embedding.word_embeddings.weight",
    "embed_in.weight",  # GPT-NeoX / Pythia
    "shared.weight",  # T5: the embedding shared by encoder and decoder
    "embeddings.weight",
)
#: Embedding-shaped tensors that are not the token embedding (positions, segments, relative buckets).
_NOT_TOKEN_EMBEDDING = ("position", "token_type", "rel_embeddings", "relative")
_UP_SUFFIXES = (
    "up_proj.weight",
    "ffn_up.weight",
    "w3.weight",
    "c_fc.weight",
    "intermediate.dense.weight",
    "fc1.weight",
    "dense_h_to_4h.weight",
    "ffn_up_shexp.weight",
    "densereludense.wi.weight",  # T5 (ungated)
    "densereludense.wi_1.weight",  # T5 v1.1 / Flan-T5: the linear half of the gated MLP
    "ffn.lin1.weight",  # DistilBERT
    "mlp.fc_in.weight",  # GPT-J
)
_GATE_SUFFIXES = (
    "gate_proj.weight",
    "ffn_gate.weight",
    "w1.weight",
    "ffn_gate_shexp.weight",
    "densereludense.wi_0.weight",  # T5 v1.1: the activated half
)
#: Most experts one stacked tensor may declare (real MoE models have at most a few hundred).
MAX_STACKED_EXPERTS = 1 << 16
#: GGUF routed experts stacked in one ``[n_expert, units, hidden]`` tensor per layer.
_STACKED_UP_SUFFIXES = ("ffn_up_exps.weight",)
_STACKED_GATE_SUFFIXES = ("ffn_gate_exps.weight",)
_FUSED_SUFFIXES = ("gate_up_proj.weight",)
#: gpt-oss: every expert of a layer in one 3-D tensor, gate and up rows interleaved (g0, u0, g1, ...);
#: ``[n_expert, hidden, 2 * units]`` in bf16 (transformers' parameter), ``[n_expert, 2 * units, hidden]``
#: when read from MXFP4 ``_blocks``/``_scales`` (output rows, as the blocks store them).
_STACKED_INTERLEAVED_SUFFIXES = ("experts.gate_up_proj",)
#: The gain applied to the MLP input, in priority order: Gemma 2/3 have both a post-attention norm
#: (applied to the attention output) and the pre-feed-forward norm that actually feeds the MLP.
_NORM_SUFFIXES = (
    "pre_feedforward_layernorm.weight",
    "post_attention_layernorm.weight",
    "ffn_norm.weight",
    "ln_2.weight",
    "attention.output.layernorm.weight",
    "attention.layernorm.weight",  # MPNet (post-norm: the attention block's output norm feeds the MLP)
    "sa_layer_norm.weight",  # DistilBERT
    "ln_mlp.weight",  # Falcon (new decoder architecture)
)
#: Names whose weights are stored ``[in, out]`` (GPT-2 and its Conv1D descendants).
_TRANSPOSED_SUFFIXES = ("c_fc.weight",)
SHARED_EXPERT = -1
#: Attention value projections ``[kv_heads * head_dim, hidden]`` (Llama/Mistral/Qwen, GGUF, BERT, Meta).
_VALUE_SUFFIXES = (
    "self_attn.v_proj.weight",
    "attn_v.weight",
    "attention.self.value.weight",
    "attention.wv.weight",
    "attention.self.value_proj.weight",  # DeBERTa v2/v3
    "attention.attn.v.weight",  # MPNet
    "selfattention.v.weight",  # T5 self-attention (not EncDecAttention)
    "attention.v_lin.weight",  # DistilBERT
)
#: Fused ``[q; k; v]`` projections: GPT-2's Conv1D ``c_attn`` (stored ``[in, out]``), Phi-3's ``qkv_proj``.
_FUSED_QKV_SUFFIXES = ("attn.c_attn.weight", "self_attn.qkv_proj.weight")
_ATTENTION_NORM_SUFFIXES = (
    "input_layernorm.weight",
    "ln_1.weight",
    "attn_norm.weight",
    "attention_norm.weight",
)


@dataclass(frozen=True)
class MlpBlock:
    """One MLP (a dense layer's, or one expert's) as the fingerprint reads it."""

    layer: int
    expert: int | None  # None for a dense MLP, SHARED_EXPERT for a shared expert
    up: str
    gate: str | None
    units: int
    transposed: bool  # stored [in, out]: units are columns
    fused: bool  # one tensor holds [gate; up] stacked along the unit axis
    norm: str | None  # the gain vector applied to the MLP input, if found
    stacked: bool = False  # up/gate are 3-D [n_expert, units, hidden]; this block is slice ``expert``
    interleaved: bool = False  # fused gate/up rows alternate (gpt-oss): gate unit j = row 2j, up = 2j + 1


@dataclass(frozen=True)
class ValueProjection:
    """One layer's attention value projection: rows ``offset .. offset + rows`` of ``tensor`` (in
    ``[out, in]`` layout; columns when ``transposed``) are the value dimensions, head after head."""

    layer: int
    tensor: str
    offset: int
    rows: int
    transposed: bool
    norm: str | None  # the gain applied to the attention input (pre-norm models), if found


@dataclass(frozen=True)
class RoleMap:
    embedding: str | None
    hidden_size: int | None
    blocks: tuple[MlpBlock, ...]
    method: str  # "names", "graph order" or "storage order"


def layer_of(name: str) -> tuple[int, str] | None:
    """``(layer, rest of the name, lower case)`` of a per-layer tensor; decoder layers of an
    encoder-decoder model are offset by :data:`DECODER_LAYER_OFFSET`."""
    lowered = name.lower()
    match = _LAYER.search(lowered)
    if not match:
        return None
    layer = int(match.group(1))
    if "decoder." in lowered[: match.start() + 1] and "encoder." not in lowered[: match.start() + 1]:
        layer += DECODER_LAYER_OFFSET
    return layer, match.group(2)


def find_embedding(tensors: Mapping[str, TensorInfo], vocab_size: int | None) -> str | None:
    """The token-embedding matrix: by name (the most specific name first), else the 2-D tensor with
    ``vocab_size`` rows."""
    for suffix in _EMBEDDING_NAMES:
        for name, info in tensors.items():
            lowered = name.lower()
            if (
                len(info.shape) == 2
                and lowered.endswith(suffix)
                and not any(word in lowered for word in _NOT_TOKEN_EMBEDDING)
            ):
                return name
    if vocab_size:
        for name, info in tensors.items():
            if len(info.shape) == 2 and info.shape[0] == vocab_size and "head" not in name.lower():
                return name
    return None


def _orientation(shape: Sequence[int], hidden: int, name_transposed: bool) -> tuple[bool, int] | None:
    """(stored transposed?, unit count) of an up/gate tensor, or None if it does not touch ``hidden``."""
    if len(shape) != 2:
        return None
    rows, cols = shape
    if cols == hidden and (rows != hidden or not name_transposed):
        return False, rows
    if rows == hidden:
        return True, cols
    return None


def _norms_by_layer(tensors: Mapping[str, TensorInfo], parallel_blocks: bool = False) -> dict[int, str]:
    """Each layer's MLP-input gain by name (in :data:`_NORM_SUFFIXES` priority). ``parallel_blocks``:
    when no layer names one, attention and MLP read one norm (Falcon, Phi-2, GPT-J): use that."""
    ranked: dict[int, tuple[int, str]] = {}
    for name in tensors:
        found = layer_of(name)
        if found is None:
            continue
        layer, rest = found
        for rank, suffix in enumerate(_NORM_SUFFIXES):
            if rest.endswith(suffix) and (layer not in ranked or rank < ranked[layer][0]):
                ranked[layer] = (rank, name)
    norms = {layer: name for layer, (_, name) in ranked.items()}
    if parallel_blocks and not norms:
        return _layer_tensors(tensors, _ATTENTION_NORM_SUFFIXES)
    return norms


def _sibling_norm(tensors: Mapping[str, TensorInfo], name: str, module: str) -> str | None:
    """T5 keeps each sub-layer's norm beside it: ``block.N.layer.K.layer_norm.weight`` for
    ``block.N.layer.K.<module>...``."""
    position = name.lower().find("." + module + ".")
    if position < 0:
        return None
    candidate = name[: position + 1] + "layer_norm.weight"
    return candidate if candidate in tensors else None


def _by_names(tensors: Mapping[str, TensorInfo], hidden: int) -> list[MlpBlock]:
    found: dict[tuple[int, int | None], dict[str, str]] = {}
    stacked: dict[int, dict[str, str]] = {}
    for name in tensors:
        found_layer = layer_of(name)
        if found_layer is None:
            continue
        layer, rest = found_layer
        expert_match = _EXPERT.search(rest)
        expert = int(expert_match.group(1)) if expert_match else None
        if expert is None and ("shared_expert" in rest or "shexp" in rest):
            expert = SHARED_EXPERT
        key = (layer, expert)
        if rest.endswith(_STACKED_INTERLEAVED_SUFFIXES):
            stacked.setdefault(key[0], {})["interleaved"] = name
        elif rest.endswith(_STACKED_UP_SUFFIXES):
            stacked.setdefault(key[0], {})["up"] = name
        elif rest.endswith(_STACKED_GATE_SUFFIXES):
            stacked.setdefault(key[0], {})["gate"] = name
        elif rest.endswith(_FUSED_SUFFIXES):
            found.setdefault(key, {})["fused"] = name
        elif rest.endswith(_GATE_SUFFIXES):
            found.setdefault(key, {})["gate"] = name
        elif rest.endswith(_UP_SUFFIXES):
            found.setdefault(key, {})["up"] = name
    norms = _norms_by_layer(tensors, parallel_blocks=True)
    blocks: list[MlpBlock] = []
    for (layer, expert), roles in sorted(found.items(), key=lambda item: (item[0][0], item[0][1] or -2)):
        fused = "fused" in roles
        up = roles.get("fused") or roles.get("up")
        if up is None:
            continue
        oriented = _orientation(tensors[up].shape, hidden, up.lower().endswith(_TRANSPOSED_SUFFIXES))
        if oriented is None:
            continue
        transposed, units = oriented
        if fused:
            units //= 2
        gate = roles.get("gate")
        if gate is not None and tensors[gate].shape != tensors[up].shape:
            gate = None
        norm = norms.get(layer) or _sibling_norm(tensors, up, "densereludense")
        blocks.append(MlpBlock(layer, expert, up, gate, units, transposed, fused, norm))
    blocks.extend(_stacked_experts(tensors, stacked, hidden, norms))
    blocks.sort(key=lambda block: (block.layer, block.expert or -2))  # the order names gave before
    return blocks


def _stacked_experts(
    tensors: Mapping[str, TensorInfo], stacked: dict[int, dict[str, str]], hidden: int, norms: dict[int, str]
) -> list[MlpBlock]:
    """One block per slice of each layer's stacked ``[n_expert, units, hidden]`` expert tensors."""
    blocks: list[MlpBlock] = []
    for layer, roles in stacked.items():
        if "interleaved" in roles:
            blocks.extend(
                _interleaved_experts(tensors[roles["interleaved"]], layer, hidden, norms.get(layer))
            )
            continue
        up = roles.get("up")
        if up is None:
            continue
        shape = tensors[up].shape
        if len(shape) != 3 or shape[2] != hidden:
            continue  # not the [n_expert, units, hidden] layout this reads
        if shape[1] == 0 or shape[0] > MAX_STACKED_EXPERTS:
            continue  # no units to test, or an expert count no model has (a loop of 2**40 blocks)
        gate = roles.get("gate")
        if gate is not None and tensors[gate].shape != shape:
            gate = None
        for expert in range(shape[0]):
            blocks.append(MlpBlock(layer, expert, up, gate, shape[1], False, False, norms.get(layer), True))
    return blocks


def _interleaved_experts(info: TensorInfo, layer: int, hidden: int, norm: str | None) -> list[MlpBlock]:
    """One block per expert of a gpt-oss ``gate_up_proj``; its orientation from the shape (the axis
    that is not ``hidden`` holds 2 * units), or, when both are, from the storage (MXFP4 stores
    output rows, the bf16 parameter is ``[hidden, 2 * units]``)."""
    if len(info.shape) != 3:
        return []
    experts, first, second = info.shape
    if second == hidden and (first != hidden or info.dtype == "MXFP4"):
        transposed, fused_units = False, first
    elif first == hidden:
        transposed, fused_units = True, second
    else:
        return []
    if fused_units % 2:
        return []
    return [
        MlpBlock(layer, expert, info.name, None, fused_units // 2, transposed, True, norm, True, True)
        for expert in range(experts)
    ]


def _graph_order(graph: Graph | None) -> list[tuple[str, bool | None]] | None:
    """``(weight, stored [in, out]?)`` for each matrix product, in graph order, when there is a graph."""
    if graph is None:
        return None
    return [(item.weight, item.transposed) for item in graph.matmul_weights()] or None


def _by_order(
    tensors: Mapping[str, TensorInfo],
    order: list[tuple[str, bool | None]],
    hidden: int,
    default_transposed: bool,
) -> list[MlpBlock]:
    """Group matrix products into MLP blocks by shape: up/gate ``[H, I]`` ... closed by down ``[I, H]``."""
    shapes = {name: tensors[name].shape for name, _ in order if name in tensors}
    widths = Counter(
        dim
        for shape in shapes.values()
        if len(shape) == 2 and hidden in shape
        for dim in shape
        if dim != hidden
    )
    if not widths:
        return []
    inner = widths.most_common(1)[0][0]
    norms = list(_norms_by_layer(tensors).values())
    blocks: list[MlpBlock] = []
    pending: list[tuple[str, bool]] = []
    for name, flag in order:
        shape = shapes.get(name)
        if shape is None or len(shape) != 2:
            continue
        transposed = default_transposed if flag is None else flag
        up_shape = (hidden, inner) if transposed else (inner, hidden)
        if tuple(shape) == up_shape:
            pending.append((name, transposed))
        elif tuple(shape) == up_shape[::-1] and pending:
            layer = len(blocks)
            up_name, up_transposed = pending[-1]
            gate = pending[-2][0] if len(pending) >= 2 else None
            norm = norms[layer] if layer < len(norms) else None
            blocks.append(MlpBlock(layer, None, up_name, gate, inner, up_transposed, False, norm))
            pending = []
    return blocks


def assign_roles(
    tensors: Mapping[str, TensorInfo],
    *,
    vocab_size: int | None,
    hidden_size: int | None,
    format: str,
    graph: Graph | None = None,
) -> RoleMap:
    embedding = find_embedding(tensors, vocab_size)
    hidden = tensors[embedding].shape[1] if embedding else hidden_size
    if hidden is None:
        return RoleMap(embedding, None, (), "names")
    blocks = _by_names(tensors, hidden)
    if blocks:
        return RoleMap(embedding, hidden, tuple(blocks), "names")
    order = _graph_order(graph)
    method = "graph order"
    if order is None:
        order, method = [(name, None) for name in tensors], "storage order"
    blocks = _by_order(tensors, order, hidden, default_transposed=(format == "onnx"))
    return RoleMap(embedding, hidden, tuple(blocks), method)


def _layer_tensors(tensors: Mapping[str, TensorInfo], suffixes: tuple[str, ...]) -> dict[int, str]:
    found: dict[int, str] = {}
    for name in tensors:
        layer = layer_of(name)
        if layer and layer[1].endswith(suffixes) and "expert" not in layer[1]:
            found.setdefault(layer[0], name)
    return found


def find_value_projections(
    tensors: Mapping[str, TensorInfo], hidden: int, value_rows: int | None
) -> tuple[ValueProjection, ...]:
    """Each layer's value projection, by name only: the value-sign test needs to know that these rows
    are values (whose sign symmetry it uses), which graph or storage order cannot promise.

    ``value_rows`` (``kv_heads * head_dim``, from the config) places ``v`` inside a fused ``[q; k; v]``
    tensor; without it only an even three-way split (``[3 * hidden]``, multi-head attention) is read.
    """
    norms = _layer_tensors(tensors, _ATTENTION_NORM_SUFFIXES)
    out: dict[int, ValueProjection] = {}
    for layer, name in _layer_tensors(tensors, _VALUE_SUFFIXES).items():
        shape = tensors[name].shape
        if len(shape) == 2 and shape[1] == hidden:
            norm = norms.get(layer) or _sibling_norm(tensors, name, "selfattention")
            out[layer] = ValueProjection(layer, name, 0, shape[0], False, norm)
    for layer, name in _layer_tensors(tensors, _FUSED_QKV_SUFFIXES).items():
        shape = tensors[name].shape
        if layer in out or len(shape) != 2 or hidden not in shape:
            continue
        # GPT-2's Conv1D stores [hidden, 3 * hidden]; Qwen-1's c_attn and Phi-3's qkv_proj are nn.Linear.
        transposed = shape[0] == hidden and shape[1] != hidden
        total = shape[1] if transposed else shape[0]
        if (shape[0] if transposed else shape[1]) != hidden:
            continue
        rows = value_rows if value_rows and value_rows < total else (hidden if total == 3 * hidden else None)
        if rows:
            out[layer] = ValueProjection(layer, name, total - rows, rows, transposed, norms.get(layer))
    return tuple(out[layer] for layer in sorted(out))


def value_projections_from_graph(
    graph: Graph | None, tensors: Mapping[str, TensorInfo], hidden: int
) -> tuple[ValueProjection, ...]:
    """Each attention's value projection from the computation graph (the weight product that the
    softmaxed scores multiply), layer = position in graph order. For exports whose weights have no
    telling names; as sure as a name, because it is what the graph computes."""
    if graph is None:
        return ()
    found: list[ValueProjection] = []
    for layer, weight in enumerate(graph.attention_value_weights()):
        info = tensors.get(weight.weight)
        if info is None or len(info.shape) != 2:
            continue
        inputs, rows = (info.shape[0], info.shape[1]) if weight.transposed else (info.shape[1], info.shape[0])
        if inputs == hidden:
            found.append(ValueProjection(layer, weight.weight, 0, rows, weight.transposed, None))
    return tuple(found)
