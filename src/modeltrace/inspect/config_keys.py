"""The config.json keys modeltrace reads, in one place: each size under every name model code uses.

Model code names one quantity many ways (GPT-2's ``n_layer``, Llama's ``num_hidden_layers``, ChatGLM's
``num_layers``, Meta's ``params.json`` ``n_layers``). Every reader of a config (the card's dimensions,
the field layout, multimodal towers, the fingerprint header, a label's hyper-parameters) looks a
size up through these tuples, first key present wins, so a name added here is understood everywhere.
Family layouts (:mod:`modeltrace.inspect.layouts`) read their own family's exact key names instead.
"""

from __future__ import annotations

LAYERS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers")
HIDDEN = ("hidden_size", "d_model", "n_embd", "dim")
HEADS = ("num_attention_heads", "n_head", "n_heads")
KV_HEADS = ("num_key_value_heads", "n_kv_heads")
HEAD_DIM = ("head_dim", "kv_channels")
VOCAB = ("vocab_size", "padded_vocab_size", "n_vocab")
INTERMEDIATE = ("intermediate_size", "ffn_hidden_size", "n_inner")
CONTEXT = ("max_position_embeddings", "seq_length", "n_positions", "max_sequence_length")
ROUTED_EXPERTS = ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")
EXPERTS_PER_TOKEN = ("num_experts_per_tok", "experts_per_token", "moe_topk")
MTP_LAYERS = ("num_nextn_predict_layers",)

#: A vision or audio tower's sizes in a multimodal wrapper's ``vision_config`` / ``audio_config``
#: (Kimi K2.5's MoonViT says ``vt_num_hidden_layers``, ViTs ``depth``, Whisper ``encoder_layers``).
TOWER_LAYERS = ("num_hidden_layers", "vt_num_hidden_layers", "depth", "num_layers", "encoder_layers")
TOWER_HIDDEN = ("hidden_size", "vt_hidden_size", "embed_dim", "d_model")

#: The shape-defining hyper-parameters copied verbatim from config.json into a label's architecture
#: block and a fingerprint's header (values as the config states them, unvalidated).
HYPERPARAMETERS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "intermediate_size", "vocab_size", "max_position_embeddings", "head_dim", "rope_theta",
    "n_routed_experts", "num_experts", "num_local_experts", "num_experts_per_tok", "moe_intermediate_size",
    "n_layer", "n_embd", "n_head", "d_model", "torch_dtype", "tie_word_embeddings",
)  # fmt: skip
