"""Count parameters from tensor names and shapes: total, active per token, and what each tensor is.

Every tensor gets one role, read from its name:

- ``routed``: a routed expert's weights. Per-expert tensors (HF ``mlp.experts.7.``, Mixtral
  ``block_sparse_moe.experts.7.``) or stacked 3-D tensors holding every expert of a layer (gpt-oss
  ``mlp.experts.gate_up_proj``, GGUF ``blk.N.ffn_gate_exps``).
- ``embedding``: the input token embedding (HF ``embed_tokens``, GPT-NeoX ``embed_in``, GPT-2 ``wte``,
  GGUF ``token_embd``, ...; reported apart; it counts as active).
- ``head``: the output projection to the vocabulary (HF ``lm_head``, GGUF ``output``, ChatGLM
  ``output_layer``, GPT-NeoX ``embed_out``); counted like a dense tensor and reported apart, since
  some makers leave it out of "active" (absent when tied to the embedding).
- ``mtp``: DeepSeek-style multi-token-prediction modules (layers past ``num_hidden_layers``, GGUF
  ``nextn``). Excluded from the totals because makers exclude them (DeepSeek-V3: "671B main model
  + 14B MTP module"), and reported as ``mtp_params``.
- ``auxiliary``: quantisation scales, zero points, packed shapes and saved buffers such as rotary
  ``inv_freq`` and GPT-NeoX's causal mask ``attention.bias`` / ``attention.masked_bias``. Their bytes
  are on disk but they are not parameters.
- ``dense``: everything else (attention, norms, routers, shared experts).

Active parameters per token = every non-routed parameter + for each MoE layer, the routed
parameters of ``experts_per_token`` of its experts. Quantised tensors are counted in logical
elements: packed 4-bit layouts (gpt-oss MXFP4 ``*_blocks``, compressed-tensors ``weight_packed``,
GPTQ ``qweight``) are widened by the number of values per stored element.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from modeltrace.types import TensorInfo

_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blk|block|blocks)\.(\d+)\.")
_EXPERT_INDEX = re.compile(r"\.experts\.(\d+)\.")
_STACKED_EXPERTS = re.compile(r"\.experts\.(?!\d)|_exps\b")
_SHARED_EXPERT = re.compile(r"shared_expert|_shexp\b")
_MTP_NAME = re.compile(r"\.nextn\.|\.eh_proj\.|\.enorm\.|\.hnorm\.|\.shared_head\.")
_EMBEDDING = re.compile(
    r"(?:^|\.)(?:embed_tokens|embed_in|word_embeddings|wte|tok_embeddings|token_embd"
    r"|embeddings\.word_embeddings)"
    r"\.weight$"
)
_HEAD = re.compile(r"(?:^|\.)(?:lm_head|output_layer|embed_out)\.(?:weight|bias)$|^output\.weight$")
_AUXILIARY = re.compile(
    r"(?:_scale_inv|\.weight_scale|\.input_scale|\.weight_zero_point|\.weight_shape|_scales|\.scales"
    r"|\.qzeros|\.g_idx|\.absmax|\.quant_map|\.quant_state.*|inv_freq|\.SCB|\.weight_format"
    r"|(?:^|\.)attention\.(?:masked_)?bias)$"  # GPT-NeoX's saved causal-mask buffers (older Pythia files)
)


@dataclass(frozen=True)
class CountHints:
    """What config or metadata say that names alone cannot: layer count and experts per token."""

    main_layers: int | None = None  # layers past this index are multi-token-prediction modules
    mtp_layers: int = 0
    routed_experts: int | None = None  # to find the expert axis of stacked tensors
    experts_per_token: int | None = None
    packed_bits: int = 4  # bits per value in packed-integer quantisation (GPTQ, compressed-tensors)


@dataclass(frozen=True)
class ParamCount:
    total: int
    active: int | None  # None when the model has routed experts but experts-per-token is unknown
    embedding: int
    head: int  # output projection to the vocabulary (0 when tied to the embedding)
    routed: int
    mtp: int
    auxiliary_tensors: int
    moe_layers: int
    routed_experts: int | None  # experts per MoE layer (largest seen)
    layer_count: int | None  # main layers seen in tensor names (highest index + 1)
    routed_per_expert: int | None  # routed parameters of one expert in one layer, when uniform


def logical_elements(info: TensorInfo, packed_bits: int = 4) -> int:
    """Parameters a tensor holds, widening packed quantised storage to its logical values."""
    name = info.name
    if name.endswith("_blocks") and info.dtype == "U8":  # MXFP4: two 4-bit values per byte
        return info.numel * 2
    if name.endswith((".weight_packed", ".qweight")) and info.dtype in ("I32", "U32"):
        return info.numel * (32 // max(packed_bits, 1))
    return info.numel


_DIGITS = re.compile(r"\d+")


@functools.lru_cache(maxsize=8192)
def _role_of_template(template: str) -> str:
    """Role by name alone; ``template`` has every number replaced by 0, so a model's thousands of
    per-layer, per-expert names share a handful of cache entries."""
    if _AUXILIARY.search(template):
        return "auxiliary"
    if _MTP_NAME.search(template):
        return "mtp"
    if _EMBEDDING.search(template):
        return "embedding"
    if _HEAD.search(template):
        return "head"
    if _SHARED_EXPERT.search(template):
        return "dense"
    if _EXPERT_INDEX.search(template) or _STACKED_EXPERTS.search(template):
        return "routed"
    return "dense"


def role_of(name: str, hints: CountHints, layer: int | None = None) -> str:
    """``routed``, ``embedding``, ``head``, ``mtp``, ``auxiliary`` or ``dense`` (see module doc).

    ``layer`` is the layer index in ``name`` when the caller has already parsed it.
    """
    role = _role_of_template(_DIGITS.sub("0", name))
    if role == "auxiliary" or not hints.mtp_layers or hints.main_layers is None:
        return role
    if layer is None:
        match = _LAYER.search(name)
        layer = int(match.group(1)) if match else -1
    return "mtp" if layer >= hints.main_layers else role


def _stacked_expert_count(info: TensorInfo, hints: CountHints) -> int:
    """The expert axis of a stacked tensor: the one equal to the known expert count, else axis 0.

    Readers may list GGUF shapes in either axis order, so the axis is found, not assumed.
    """
    if hints.routed_experts and hints.routed_experts in info.shape:
        return hints.routed_experts
    return info.shape[0] if info.shape else 1


def count_parameters(tensors: Iterable[TensorInfo], hints: CountHints) -> ParamCount:
    total = embedding = head = mtp = auxiliary = 0
    routed_by_layer: dict[int, int] = defaultdict(int)
    experts_by_layer: dict[int, set[int]] = defaultdict(set)
    stacked_by_layer: dict[int, int] = defaultdict(int)
    highest_layer = -1
    for info in tensors:
        layer_match = _LAYER.search(info.name)
        layer = int(layer_match.group(1)) if layer_match else -1
        role = role_of(info.name, hints, layer)
        if role == "auxiliary":
            auxiliary += 1
            continue
        elements = logical_elements(info, hints.packed_bits)
        if role == "mtp":
            mtp += elements
            continue
        total += elements
        highest_layer = max(highest_layer, layer)
        if role == "embedding":
            embedding += elements
        elif role == "head":
            head += elements
        elif role == "routed":
            routed_by_layer[layer] += elements
            expert = _EXPERT_INDEX.search(info.name)
            if expert:
                experts_by_layer[layer].add(int(expert.group(1)))
            else:
                stacked_by_layer[layer] = max(stacked_by_layer[layer], _stacked_expert_count(info, hints))
    experts_in = {
        layer: max(len(experts_by_layer[layer]), stacked_by_layer[layer]) or 1 for layer in routed_by_layer
    }
    routed = sum(routed_by_layer.values())
    active: int | None = total - routed
    if routed and hints.experts_per_token is None:
        active = None
    elif routed and active is not None:
        per_token = hints.experts_per_token or 0
        active += sum(routed_by_layer[layer] * min(per_token, experts_in[layer]) // experts_in[layer]
                      for layer in routed_by_layer)  # fmt: skip
    per_expert = {routed_by_layer[layer] // experts_in[layer] for layer in routed_by_layer}
    return ParamCount(
        total=total,
        active=active,
        embedding=embedding,
        head=head,
        routed=routed,
        mtp=mtp,
        auxiliary_tensors=auxiliary,
        moe_layers=len(routed_by_layer),
        routed_experts=max(experts_in.values()) if experts_in else None,
        layer_count=highest_layer + 1 if highest_layer >= 0 else None,
        routed_per_expert=per_expert.pop() if len(per_expert) == 1 else None,
    )
