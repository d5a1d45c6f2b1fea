"""The tensor layout a ``config.json`` implies: Hugging Face tensor names and shapes, per family.

Counting parameters from a config works by writing out the tensors the architecture would hold and
counting them with the same rules used for real weights (:mod:`modeltrace.inspect.param_count`).
One counting path means a config-only card and a weights card of the same model agree exactly, and
the names can be checked against a real checkpoint's ``*.index.json`` weight map.

Families checked against real checkpoints (``model_type``): llama, mistral, qwen2, qwen3 (dense
decoders); mixtral; qwen2_moe, qwen3_moe; gpt_oss (fused expert tensors with biases, attention sinks);
gpt_neox (GPT-NeoX, Pythia: ``embed_in`` / ``embed_out``, LayerNorm biases, fused query-key-value);
chatglm (ChatGLM2/3, CodeGeeX2); deepseek_v2, deepseek_v3, kimi_k2 (multi-head latent attention,
fine-grained MoE, multi-token-prediction layers), which are laid out from their fields by
:mod:`modeltrace.inspect.field_layout`. Any other ``model_type`` is laid out from its fields too,
and the caller says that this layout was not checked against a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from modeltrace.errors import FormatError, ResourceLimitError
from modeltrace.formats import limits
from modeltrace.inspect import config_keys
from modeltrace.inspect.field_layout import MAX_CONFIG_INT, read_fields
from modeltrace.inspect.field_layout import layout as field_layout

Shapes = dict[str, tuple[int, ...]]

LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3")
DEEPSEEK_LIKE = ("deepseek_v2", "deepseek_v3", "kimi_k2")
QWEN_MOE = ("qwen2_moe", "qwen3_moe")


class ConfigView:
    """Typed, validated reads of a config dict (configs are untrusted input)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    def int(self, *keys: str, default: int | None = None) -> int | None:
        """The first of ``keys`` present (and not null), as a checked non-negative int."""
        for key in keys:
            value = self.config.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CONFIG_INT:
                raise FormatError(
                    None,
                    f"config key '{key}' is {value!r:.40}; expected an integer from 0 to {MAX_CONFIG_INT:,}",
                )
            return value
        return default

    def need(self, *keys: str) -> int:
        value = self.int(*keys)
        if value is None:
            raise FormatError(
                None, f"config has none of the keys {', '.join(keys)}, needed to count parameters"
            )
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.config.get(key)
        return value if isinstance(value, bool) else default

    def int_list(self, key: str) -> list[int]:
        value = self.config.get(key)
        if not isinstance(value, list):
            return []
        return [item for item in value if isinstance(item, int) and not isinstance(item, bool)]


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language-model part of a config: ``text_config`` for multimodal wrappers, else itself."""
    nested = config.get("text_config")
    has_own_layers = any(key in config for key in config_keys.LAYERS)
    if isinstance(nested, dict) and not has_own_layers:
        return nested
    return config


# --- building blocks ---------------------------------------------------------------------------------


def _linear(shapes: Shapes, name: str, out_features: int, in_features: int, bias: bool = False) -> None:
    shapes[f"{name}.weight"] = (out_features, in_features)
    if bias:
        shapes[f"{name}.bias"] = (out_features,)


def _gated_mlp(shapes: Shapes, prefix: str, hidden: int, inner: int, names: tuple[str, str, str]) -> None:
    """SwiGLU feed-forward: gate and up project hidden -> inner, down projects back."""
    gate, up, down = names
    _linear(shapes, f"{prefix}.{gate}", inner, hidden)
    _linear(shapes, f"{prefix}.{up}", inner, hidden)
    _linear(shapes, f"{prefix}.{down}", hidden, inner)


_HF_MLP = ("gate_proj", "up_proj", "down_proj")
_MIXTRAL_MLP = ("w1", "w3", "w2")


def _embeddings(shapes: Shapes, view: ConfigView, hidden: int, vocab: int, prefix: str = "model") -> None:
    shapes[f"{prefix}.embed_tokens.weight"] = (vocab, hidden)


def _head(shapes: Shapes, view: ConfigView, hidden: int, vocab: int, prefix: str = "model") -> None:
    shapes[f"{prefix}.norm.weight"] = (hidden,)
    if not view.flag("tie_word_embeddings", False):
        shapes["lm_head.weight"] = (vocab, hidden)


def _gqa_attention(shapes: Shapes, prefix: str, view: ConfigView, hidden: int, model_type: str) -> None:
    heads = view.need("num_attention_heads")
    kv_heads = view.int("num_key_value_heads", default=heads) or heads
    head_dim = view.int("head_dim") or hidden // max(heads, 1)
    qkv_bias = model_type in ("qwen2", "qwen2_moe") or view.flag("attention_bias", False)
    o_bias = model_type not in ("qwen2", "qwen2_moe") and view.flag("attention_bias", False)
    _linear(shapes, f"{prefix}.q_proj", heads * head_dim, hidden, qkv_bias)
    _linear(shapes, f"{prefix}.k_proj", kv_heads * head_dim, hidden, qkv_bias)
    _linear(shapes, f"{prefix}.v_proj", kv_heads * head_dim, hidden, qkv_bias)
    _linear(shapes, f"{prefix}.o_proj", hidden, heads * head_dim, o_bias)
    if model_type in ("qwen3", "qwen3_moe"):  # Qwen3 normalises queries and keys per head
        shapes[f"{prefix}.q_norm.weight"] = (head_dim,)
        shapes[f"{prefix}.k_norm.weight"] = (head_dim,)


def _layer_norms(shapes: Shapes, prefix: str, hidden: int) -> None:
    shapes[f"{prefix}.input_layernorm.weight"] = (hidden,)
    shapes[f"{prefix}.post_attention_layernorm.weight"] = (hidden,)


def _check_size(layers: int, tensors_per_layer: int) -> None:
    """A hostile config could ask for billions of tensor names; refuse before building them."""
    if layers * tensors_per_layer > limits.MAX_TENSORS:
        raise ResourceLimitError(
            None,
            f"config implies {layers:,} layers x {tensors_per_layer:,} tensors, over the "
            f"{limits.MAX_TENSORS:,}-tensor limit",
        )


# --- families ----------------------------------------------------------------------------------------


def _llama(view: ConfigView, model_type: str) -> Shapes:
    hidden, layers = view.need("hidden_size"), view.need("num_hidden_layers")
    vocab, inner = view.need("vocab_size"), view.need("intermediate_size")
    _check_size(layers, 16)
    shapes: Shapes = {}
    _embeddings(shapes, view, hidden, vocab)
    mlp_bias = view.flag("mlp_bias", False)
    for index in range(layers):
        prefix = f"model.layers.{index}"
        _layer_norms(shapes, prefix, hidden)
        _gqa_attention(shapes, f"{prefix}.self_attn", view, hidden, model_type)
        for name, (out_f, in_f) in zip(
            _HF_MLP, ((inner, hidden), (inner, hidden), (hidden, inner)), strict=True
        ):
            _linear(shapes, f"{prefix}.mlp.{name}", out_f, in_f, mlp_bias)
    _head(shapes, view, hidden, vocab)
    return shapes


def _mixtral(view: ConfigView, model_type: str) -> Shapes:
    hidden, layers = view.need("hidden_size"), view.need("num_hidden_layers")
    vocab, inner = view.need("vocab_size"), view.need("intermediate_size")
    experts = view.need("num_local_experts")
    _check_size(layers, 10 + 3 * experts)
    shapes: Shapes = {}
    _embeddings(shapes, view, hidden, vocab)
    for index in range(layers):
        prefix = f"model.layers.{index}"
        _layer_norms(shapes, prefix, hidden)
        _gqa_attention(shapes, f"{prefix}.self_attn", view, hidden, model_type)
        _linear(shapes, f"{prefix}.block_sparse_moe.gate", experts, hidden)
        for expert in range(experts):
            _gated_mlp(shapes, f"{prefix}.block_sparse_moe.experts.{expert}", hidden, inner, _MIXTRAL_MLP)
    _head(shapes, view, hidden, vocab)
    return shapes


def _qwen_moe(view: ConfigView, model_type: str) -> Shapes:
    hidden, layers = view.need("hidden_size"), view.need("num_hidden_layers")
    vocab, inner = view.need("vocab_size"), view.need("intermediate_size")
    experts, expert_inner = view.need("num_experts"), view.need("moe_intermediate_size")
    sparse_step = view.int("decoder_sparse_step", default=1) or 1
    dense_layers = set(view.int_list("mlp_only_layers"))
    shared_inner = view.int("shared_expert_intermediate_size", default=0) or 0
    _check_size(layers, 16 + 3 * experts)
    shapes: Shapes = {}
    _embeddings(shapes, view, hidden, vocab)
    for index in range(layers):
        prefix = f"model.layers.{index}"
        _layer_norms(shapes, prefix, hidden)
        _gqa_attention(shapes, f"{prefix}.self_attn", view, hidden, model_type)
        if index in dense_layers or (index + 1) % sparse_step != 0:
            _gated_mlp(shapes, f"{prefix}.mlp", hidden, inner, _HF_MLP)
            continue
        _linear(shapes, f"{prefix}.mlp.gate", experts, hidden)
        for expert in range(experts):
            _gated_mlp(shapes, f"{prefix}.mlp.experts.{expert}", hidden, expert_inner, _HF_MLP)
        if shared_inner:  # Qwen2-MoE: one always-on expert with its own sigmoid gate
            _gated_mlp(shapes, f"{prefix}.mlp.shared_expert", hidden, shared_inner, _HF_MLP)
            _linear(shapes, f"{prefix}.mlp.shared_expert_gate", 1, hidden)
    _head(shapes, view, hidden, vocab)
    return shapes


def _from_fields(view: ConfigView, model_type: str) -> Shapes:
    """Families whose layout their config fields state completely (DeepSeek's MLA + MoE design)."""
    fields = read_fields(view.config)
    if fields is None:
        raise FormatError(None, f"config of {model_type!r} lacks the sizes needed to count parameters")
    return field_layout(fields)


def _gpt_oss(view: ConfigView, model_type: str) -> Shapes:
    hidden, layers, vocab = view.need("hidden_size"), view.need("num_hidden_layers"), view.need("vocab_size")
    inner, experts = view.need("intermediate_size"), view.need("num_local_experts")
    heads = view.need("num_attention_heads")
    _check_size(layers, 24)
    shapes: Shapes = {}
    _embeddings(shapes, view, hidden, vocab)
    for index in range(layers):
        prefix = f"model.layers.{index}"
        _layer_norms(shapes, prefix, hidden)
        _gqa_attention(shapes, f"{prefix}.self_attn", view, hidden, model_type)
        shapes[f"{prefix}.self_attn.sinks"] = (heads,)  # one learned attention-sink logit per head
        _linear(shapes, f"{prefix}.mlp.router", experts, hidden, bias=True)
        # Experts are stored fused: one 3-D tensor per projection, experts on axis 0.
        shapes[f"{prefix}.mlp.experts.gate_up_proj"] = (experts, hidden, 2 * inner)
        shapes[f"{prefix}.mlp.experts.gate_up_proj_bias"] = (experts, 2 * inner)
        shapes[f"{prefix}.mlp.experts.down_proj"] = (experts, inner, hidden)
        shapes[f"{prefix}.mlp.experts.down_proj_bias"] = (experts, hidden)
    _head(shapes, view, hidden, vocab)
    return shapes


def _gpt_neox(view: ConfigView, model_type: str) -> Shapes:
    """GPT-NeoX / Pythia: LayerNorms with biases, fused query-key-value, GELU MLP, untied ``embed_out``
    head by default (names as transformers' ``GPTNeoXForCausalLM`` writes them)."""
    hidden, layers = view.need("hidden_size"), view.need("num_hidden_layers")
    vocab, inner = view.need("vocab_size"), view.need("intermediate_size")
    bias = view.flag("attention_bias", True)
    _check_size(layers, 16)
    shapes: Shapes = {"gpt_neox.embed_in.weight": (vocab, hidden)}
    for index in range(layers):
        prefix = f"gpt_neox.layers.{index}"
        for norm in ("input_layernorm", "post_attention_layernorm"):
            shapes[f"{prefix}.{norm}.weight"] = shapes[f"{prefix}.{norm}.bias"] = (hidden,)
        _linear(shapes, f"{prefix}.attention.query_key_value", 3 * hidden, hidden, bias)
        _linear(shapes, f"{prefix}.attention.dense", hidden, hidden, bias)
        _linear(shapes, f"{prefix}.mlp.dense_h_to_4h", inner, hidden, bias=True)
        _linear(shapes, f"{prefix}.mlp.dense_4h_to_h", hidden, inner, bias=True)
    shapes["gpt_neox.final_layer_norm.weight"] = shapes["gpt_neox.final_layer_norm.bias"] = (hidden,)
    if not view.flag("tie_word_embeddings", False):
        shapes["embed_out.weight"] = (vocab, hidden)
    return shapes


def _chatglm(view: ConfigView, model_type: str) -> Shapes:
    hidden, layers = view.need("hidden_size"), view.need("num_layers")
    vocab, inner = view.need("padded_vocab_size", "vocab_size"), view.need("ffn_hidden_size")
    heads = view.need("num_attention_heads")
    head_dim = view.int("kv_channels") or hidden // max(heads, 1)
    groups = view.int("multi_query_group_num") if view.flag("multi_query_attention", False) else heads
    groups = groups or heads
    qkv_bias = view.flag("add_qkv_bias", False) or view.flag("add_bias_linear", False)
    linear_bias = view.flag("add_bias_linear", False)
    _check_size(layers, 12)
    shapes: Shapes = {"transformer.embedding.word_embeddings.weight": (vocab, hidden)}
    # The rotary inverse frequencies are saved as a buffer: not a parameter, but part of the file.
    rotary_fraction = view.config.get("rotary_percent", 0.5)
    rotary_fraction = rotary_fraction if isinstance(rotary_fraction, (int, float)) else 0.5
    shapes["transformer.rotary_pos_emb.inv_freq"] = (int(head_dim * rotary_fraction) // 2,)
    for index in range(layers):
        prefix = f"transformer.encoder.layers.{index}"
        _layer_norms(shapes, prefix, hidden)
        _linear(
            shapes,
            f"{prefix}.self_attention.query_key_value",
            (heads + 2 * groups) * head_dim,
            hidden,
            qkv_bias,
        )
        _linear(shapes, f"{prefix}.self_attention.dense", hidden, heads * head_dim, linear_bias)
        # gate and up are stored fused in one matrix of twice the width
        _linear(shapes, f"{prefix}.mlp.dense_h_to_4h", 2 * inner, hidden, linear_bias)
        _linear(shapes, f"{prefix}.mlp.dense_4h_to_h", hidden, inner, linear_bias)
    if view.flag("post_layer_norm", True):
        shapes["transformer.encoder.final_layernorm.weight"] = (hidden,)
    if not view.flag("tie_word_embeddings", False):
        shapes["transformer.output_layer.weight"] = (vocab, hidden)
    return shapes


_FAMILIES: dict[str, Callable[[ConfigView, str], Shapes]] = {
    **dict.fromkeys(LLAMA_LIKE, _llama),
    "mixtral": _mixtral,
    **dict.fromkeys(QWEN_MOE, _qwen_moe),
    **dict.fromkeys(DEEPSEEK_LIKE, _from_fields),
    "gpt_oss": _gpt_oss,
    "gpt_neox": _gpt_neox,
    "chatglm": _chatglm,
}


def config_tensor_shapes(config: Mapping[str, Any]) -> tuple[Shapes, bool] | None:
    """Tensor names and shapes implied by the (text part of the) config, and whether exact.

    Returns ``(shapes, exact)``; ``exact`` is False when the ``model_type`` is not one whose layout
    was checked against real checkpoints and the tensors were laid out from the config's fields
    (:mod:`modeltrace.inspect.field_layout`). None when the fields do not say enough to lay out
    anything: the count is then unknown, never guessed.
    """
    text = text_config(config)
    model_type = text.get("model_type")
    view = ConfigView(text)
    builder = _FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if builder is not None:
        return builder(view, str(model_type)), True
    fields = read_fields(text)
    if fields is None:
        return None
    return field_layout(fields), False
