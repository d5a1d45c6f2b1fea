"""GGUF export of a llama model (Q8_0, Q4_0 or F16), the way llama.cpp's converter writes it.

The one GGUF writer of the zoo: the lineage zoo's ``gguf-q8``/``gguf-q4`` children and the demo
zoo's ``tiny-llama.gguf`` (F16, as ``convert_hf_to_gguf.py --outtype f16``, with its licence and base
model in the metadata).

Tensor names follow llama.cpp (``token_embd``, ``blk.N.attn_q``, ``ffn_gate``, ``output`` ...),
and, as ``convert_hf_to_gguf.py`` does, the rows of ``attn_q``/``attn_k`` are permuted within each
head from Hugging Face's half-split rotary layout to GGML's interleaved one: a real converter's
row permutation that a lineage test meets in every Llama GGUF.

A Mixtral-style MoE model is written as llama.cpp writes one: each layer's routed experts stacked
into 3-D tensors ``blk.N.ffn_{gate,up,down}_exps`` (numpy shape ``[n_expert, rows, cols]``), the
router as ``blk.N.ffn_gate_inp``, and ``llama.expert_count``/``llama.expert_used_count`` set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modeltrace.errors import ZooError
from modeltrace.zoo.arch import ArchConfig, Params

_NAMES = {
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight", "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "block_sparse_moe.gate.weight": "ffn_gate_inp.weight",
}  # fmt: skip
#: Mixtral expert weight -> llama.cpp stacked tensor (w1 = gate, w3 = up, w2 = down).
_EXPERT_NAMES = {"w1.weight": "ffn_gate_exps.weight", "w3.weight": "ffn_up_exps.weight",
                 "w2.weight": "ffn_down_exps.weight"}  # fmt: skip
_GLOBAL_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}  # fmt: skip


def gguf_name(hf_name: str) -> str:
    if hf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[hf_name]
    _, _, layer, rest = hf_name.split(".", 3)
    return f"blk.{layer}.{_NAMES[rest]}"


def stack_experts(params: Params, num_experts: int) -> dict[str, np.ndarray]:
    """GGUF-named tensors with each layer's ``experts.E.w*`` stacked along a new leading axis."""
    named: dict[str, np.ndarray] = {}
    pending: dict[str, list[np.ndarray | None]] = {}
    for hf_name, value in params.items():
        if ".experts." not in hf_name:
            named[gguf_name(hf_name)] = value
            continue
        # model.layers.N.block_sparse_moe.experts.E.wK.weight
        parts = hf_name.split(".")
        layer, expert, weight = parts[2], int(parts[5]), ".".join(parts[6:])
        slots = pending.setdefault(f"blk.{layer}.{_EXPERT_NAMES[weight]}", [None] * num_experts)
        slots[expert] = value
    for name, slots in pending.items():
        if any(slot is None for slot in slots):
            raise ZooError(f"'{name}': some of the {num_experts} experts are missing from the parameters")
        named[name] = np.stack([slot for slot in slots if slot is not None])
    return named


def rotary_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """convert_hf_to_gguf.py's ``LlamaModel.permute``: half-split -> interleaved rotary rows."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


#: How 2-D tensors are stored: llama.cpp's block quantisations, or plain float16.
QTYPES = ("Q8_0", "Q4_0", "F16")


def write_gguf(
    path: Path,
    name: str,
    params: Params,
    config: ArchConfig,
    vocab: list[str] | None,
    qtype: str,
    *,
    license: str | None = None,
    base_models: Sequence[str] = (),
) -> Path:
    """Write ``params`` as a GGUF file with 2-D tensors in ``qtype`` (one of :data:`QTYPES`).

    ``vocab`` becomes ``tokenizer.ggml.tokens`` (None: the file carries no tokenizer);
    ``license`` and ``base_models`` go to ``general.license`` and ``general.base_model.N.name``.
    """
    import gguf  # a core dependency, imported here because only this export needs it

    if config.family != "llama":
        raise ZooError(f"GGUF export is written for llama models (dense or MoE), not {config.family}")
    if qtype not in QTYPES:
        raise ZooError(f"GGUF export stores tensors as one of {', '.join(QTYPES)}, not {qtype!r}")
    quant_type = {"Q8_0": gguf.GGMLQuantizationType.Q8_0, "Q4_0": gguf.GGMLQuantizationType.Q4_0,
                  "F16": gguf.GGMLQuantizationType.F16}[qtype]  # fmt: skip
    file_type = {"Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
                 "F16": gguf.LlamaFileType.MOSTLY_F16}[qtype]  # fmt: skip
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(name)
    if license is not None:
        writer.add_license(license)
    if base_models:
        writer.add_base_model_count(len(base_models))
        for index, base in enumerate(base_models):
            writer.add_base_model_name(index, base)
    writer.add_context_length(config.max_positions)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_heads)
    writer.add_head_count_kv(config.num_kv_heads)
    writer.add_rope_dimension_count(config.head_dim)
    writer.add_rope_freq_base(config.rope_theta)
    writer.add_layer_norm_rms_eps(config.norm_eps)
    writer.add_vocab_size(config.vocab_size)
    if config.num_experts:
        writer.add_expert_count(config.num_experts)
        writer.add_expert_used_count(config.experts_per_token)
    writer.add_file_type(file_type)
    if vocab is not None:
        writer.add_tokenizer_model("none")  # word-level: no BPE merges or sentencepiece scores
        writer.add_token_list(vocab)
        writer.add_token_types(
            [gguf.TokenType.CONTROL if t.startswith("<") else gguf.TokenType.NORMAL for t in vocab]
        )
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for tensor_name, value in stack_experts(params, config.num_experts).items():
        tensor = value.astype(np.float32)
        if tensor_name.endswith("attn_q.weight"):
            tensor = rotary_permute(tensor, config.num_heads)
        elif tensor_name.endswith("attn_k.weight"):
            tensor = rotary_permute(tensor, config.num_kv_heads)
        if tensor.ndim < 2 or tensor_name.endswith("ffn_gate_inp.weight"):  # llama.cpp keeps these F32
            writer.add_tensor(tensor_name, tensor)
        elif qtype == "F16":
            writer.add_tensor(tensor_name, tensor.astype(np.float16))
        else:
            writer.add_tensor(tensor_name, gguf.quants.quantize(tensor, quant_type), raw_dtype=quant_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
