"""GGUF export of a llama zoo model (Q8_0 or Q4_0), the way llama.cpp's converter writes it.

Tensor names follow llama.cpp (``token_embd``, ``blk.N.attn_q``, ``ffn_gate``, ``output`` ...),
and, as ``convert_hf_to_gguf.py`` does, the rows of ``attn_q``/``attn_k`` are permuted within each
head from Hugging Face's half-split rotary layout to GGML's interleaved one: a real converter's
row permutation that a lineage test meets in every Llama GGUF.
"""

from __future__ import annotations

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
}  # fmt: skip
_GLOBAL_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}  # fmt: skip


def gguf_name(hf_name: str) -> str:
    if hf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[hf_name]
    _, _, layer, rest = hf_name.split(".", 3)
    return f"blk.{layer}.{_NAMES[rest]}"


def rotary_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """convert_hf_to_gguf.py's ``LlamaModel.permute``: half-split -> interleaved rotary rows."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def write_gguf(
    path: Path, name: str, params: Params, config: ArchConfig, vocab: list[str], qtype: str
) -> Path:
    """Write ``params`` as a GGUF file with 2-D tensors in ``qtype`` ("Q8_0" or "Q4_0")."""
    import gguf  # a core dependency, imported here because only this export needs it

    if config.family != "llama" or config.num_experts:
        raise ZooError(f"GGUF export is written for dense llama models, not {config.family}")
    quant_type = {"Q8_0": gguf.GGMLQuantizationType.Q8_0, "Q4_0": gguf.GGMLQuantizationType.Q4_0}[qtype]
    file_type = {"Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[qtype]
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(name)
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
    writer.add_file_type(file_type)
    writer.add_tokenizer_model("none")  # word-level: no BPE merges or sentencepiece scores
    writer.add_token_list(vocab)
    writer.add_token_types(
        [gguf.TokenType.CONTROL if t.startswith("<") else gguf.TokenType.NORMAL for t in vocab]
    )
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for hf_name, value in params.items():
        tensor = value.astype(np.float32)
        if hf_name.endswith("q_proj.weight"):
            tensor = rotary_permute(tensor, config.num_heads)
        elif hf_name.endswith("k_proj.weight"):
            tensor = rotary_permute(tensor, config.num_kv_heads)
        if tensor.ndim == 2:
            writer.add_tensor(
                gguf_name(hf_name), gguf.quants.quantize(tensor, quant_type), raw_dtype=quant_type
            )
        else:
            writer.add_tensor(gguf_name(hf_name), tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
