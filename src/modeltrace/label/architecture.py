"""The L1 architecture card: what the config and the tensor listing say a model is."""

from __future__ import annotations

from typing import Any

from modeltrace.formats.source import ModelSource

#: Config keys copied into the card when present (the shape-defining hyper-parameters).
HYPERPARAMETER_KEYS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "intermediate_size", "vocab_size", "max_position_embeddings", "head_dim", "rope_theta",
    "n_routed_experts", "num_experts", "num_local_experts", "num_experts_per_tok", "moe_intermediate_size",
    "n_layer", "n_embd", "n_head", "d_model", "torch_dtype", "tie_word_embeddings",
)  # fmt: skip


def architecture_card(source: ModelSource) -> dict[str, Any]:
    """Model type, architecture classes, parameter count, dtypes and key hyper-parameters."""
    config = source.config or {}
    model_type = config.get("model_type")
    architectures = [str(name) for name in config.get("architectures") or [] if isinstance(name, str)]
    if model_type is None and source.weights is not None:
        # GGUF states its architecture in metadata rather than a config.json.
        gguf_architecture = source.weights.metadata.get("general.architecture")
        model_type = str(gguf_architecture) if gguf_architecture else None
    card: dict[str, Any] = {
        "model_type": str(model_type) if model_type is not None else None,
        "architectures": architectures,
        "parameters": None,
        "tensor_count": None,
        "dtypes": {},
        "hyperparameters": {key: config[key] for key in HYPERPARAMETER_KEYS if key in config},
    }
    if source.weights is not None:
        tensors = source.weights.tensors()
        card["parameters"] = sum(info.numel for info in tensors.values())
        card["tensor_count"] = len(tensors)
        dtypes: dict[str, int] = {}
        for info in tensors.values():
            dtypes[info.dtype] = dtypes.get(info.dtype, 0) + info.numel
        card["dtypes"] = dict(sorted(dtypes.items()))
    return card
