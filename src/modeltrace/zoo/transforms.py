"""Weight-space transforms of a Llama-style model: the derivations the lineage engine must see through.

Each function takes numpy parameters keyed by Hugging Face name (see :mod:`modeltrace.zoo.arch`)
and returns new ones; none trains. The symmetric ones (unit and head permutations, residual
permutation with sign flips, rescaling, vocabulary reordering) leave the function unchanged, which
the tests check on logits. Layer transforms also return the layer map ``{new layer: old layer}``.
"""

from __future__ import annotations

import re

import numpy as np

from modeltrace.errors import ZooError
from modeltrace.zoo.arch import ArchConfig, Params, layer_prefix, parameter_shapes

_ATTN = "self_attn."
_READS_RESIDUAL = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")


def _require_llama(config: ArchConfig, what: str) -> None:
    if config.family != "llama" or config.num_experts:
        raise ZooError(f"the {what} transform is written for dense llama models, not {config.family}")


def permute_mlp_units(params: Params, config: ArchConfig, rng: np.random.Generator) -> Params:
    """Shuffle the MLP hidden units of every layer: rows of gate/up, columns of down."""
    _require_llama(config, "permuted-units")
    out = dict(params)
    for layer in range(config.num_layers):
        mlp = layer_prefix(config, layer) + "mlp."
        order = rng.permutation(config.intermediate_size)
        out[mlp + "gate_proj.weight"] = params[mlp + "gate_proj.weight"][order]
        out[mlp + "up_proj.weight"] = params[mlp + "up_proj.weight"][order]
        out[mlp + "down_proj.weight"] = params[mlp + "down_proj.weight"][:, order]
    return out


def _head_rows(weight: np.ndarray, heads: int, order: np.ndarray) -> np.ndarray:
    """Reorder the per-head row blocks of a [heads * head_dim, in] projection."""
    return weight.reshape(heads, -1, weight.shape[1])[order].reshape(weight.shape)


def permute_heads(params: Params, config: ArchConfig, rng: np.random.Generator) -> Params:
    """Shuffle attention heads: key/value heads, and query heads both across and within groups.

    With grouped-query attention query head j reads key/value head j // group, so the key/value
    heads move together with their query groups; inside a group query heads move freely.
    """
    _require_llama(config, "permuted-heads")
    group = config.num_heads // config.num_kv_heads
    out = dict(params)
    for layer in range(config.num_layers):
        attn = layer_prefix(config, layer) + _ATTN
        q_order = np.arange(config.num_heads)
        while np.array_equal(q_order, np.arange(config.num_heads)):  # a real shuffle in every layer
            kv_order = rng.permutation(config.num_kv_heads)
            q_order = np.concatenate([kv * group + rng.permutation(group) for kv in kv_order])
        out[attn + "q_proj.weight"] = _head_rows(params[attn + "q_proj.weight"], config.num_heads, q_order)
        out[attn + "k_proj.weight"] = _head_rows(
            params[attn + "k_proj.weight"], config.num_kv_heads, kv_order
        )
        out[attn + "v_proj.weight"] = _head_rows(
            params[attn + "v_proj.weight"], config.num_kv_heads, kv_order
        )
        o_proj = params[attn + "o_proj.weight"]
        out[attn + "o_proj.weight"] = _head_rows(o_proj.T, config.num_heads, q_order).T.copy()
    return out


def permute_gpt2_units_and_heads(params: Params, config: ArchConfig, rng: np.random.Generator) -> Params:
    """GPT-2 (GELU MLP, fused QKV): shuffle every layer's MLP units and attention heads.

    Conv1D weights are stored ``[in, out]``: units are columns of ``c_fc`` (and its bias) and rows of
    the MLP ``c_proj``; head h owns columns ``part * hidden + h * head_dim + j`` of ``c_attn`` for the
    query, key and value parts, and rows ``h * head_dim + j`` of the attention ``c_proj``.
    """
    if config.family != "gpt2":
        raise ZooError(f"the permuted-units-heads transform is written for gpt2 models, not {config.family}")
    hidden, dim = config.hidden_size, config.head_dim
    out = dict(params)
    for layer in range(config.num_layers):
        prefix = layer_prefix(config, layer)
        units = rng.permutation(config.intermediate_size)
        out[prefix + "mlp.c_fc.weight"] = params[prefix + "mlp.c_fc.weight"][:, units]
        out[prefix + "mlp.c_fc.bias"] = params[prefix + "mlp.c_fc.bias"][units]
        out[prefix + "mlp.c_proj.weight"] = params[prefix + "mlp.c_proj.weight"][units]
        heads = np.arange(config.num_heads)
        while np.array_equal(heads, np.arange(config.num_heads)):  # a real shuffle in every layer
            heads = rng.permutation(config.num_heads)
        within = (heads[:, None] * dim + np.arange(dim)).reshape(-1)
        columns = np.concatenate([part * hidden + within for part in range(3)])
        out[prefix + "attn.c_attn.weight"] = params[prefix + "attn.c_attn.weight"][:, columns]
        out[prefix + "attn.c_attn.bias"] = params[prefix + "attn.c_attn.bias"][columns]
        out[prefix + "attn.c_proj.weight"] = params[prefix + "attn.c_proj.weight"][within]
    return out


def permute_residual(params: Params, config: ArchConfig, rng: np.random.Generator) -> Params:
    """Apply Q = diag(signs) P to the residual stream: x -> Q x everywhere.

    RMSNorm commutes with Q up to its gain (rms(Q x) = rms(x) and the gain is per coordinate), so
    gains are only permuted; sign flips pass through the norm and are undone by the matrices that
    read the normalised stream (W -> W Q^T). Matrices writing to the stream become Q W; the
    embedding rows become Q e.
    """
    _require_llama(config, "residual-permuted-signflipped")
    order = rng.permutation(config.hidden_size)
    signs = np.where(rng.random(config.hidden_size) < 0.5, -1.0, 1.0).astype(np.float32)

    def write(matrix: np.ndarray) -> np.ndarray:  # Q W for [hidden, n] matrices
        return (matrix[order] * signs[:, None]).astype(np.float32)

    def read(matrix: np.ndarray) -> np.ndarray:  # W Q^T for [n, hidden] matrices
        return (matrix[:, order] * signs[None, :]).astype(np.float32)

    out: Params = {}
    for name, value in params.items():
        if name in ("model.embed_tokens.weight", "lm_head.weight") or name.endswith(
            tuple(f"{role}.weight" for role in _READS_RESIDUAL)
        ):
            out[name] = read(value)
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            out[name] = write(value)
        elif value.ndim == 1:  # the norm gains
            out[name] = value[order].copy()
        else:
            raise ZooError(f"permute_residual does not know how tensor '{name}' touches the residual stream")
    return out


def rescale(params: Params, config: ArchConfig, rng: np.random.Generator) -> Params:
    """Function-preserving rescalings between consecutive weights.

    * norm gains folded into the matrices that read the normalised stream, gains set to 1;
    * per key/value head c: W_q (its query heads) * c, W_k / c (attention logits unchanged,
      and rotary positions commute with a per-head scalar);
    * per key/value head d: W_v * d, the o_proj columns of its query heads / d;
    * per MLP unit e: up row * e, down column / e (SwiGLU is linear in the up branch).
    """
    _require_llama(config, "rescaled")
    out = dict(params)
    dim, group = config.head_dim, config.num_heads // config.num_kv_heads

    def factors(count: int) -> np.ndarray:
        return np.exp(rng.uniform(np.log(0.5), np.log(2.0), count)).astype(np.float32)

    for layer in range(config.num_layers):
        prefix = layer_prefix(config, layer)
        attn, mlp = prefix + _ATTN, prefix + "mlp."
        gain_in = out.pop(prefix + "input_layernorm.weight")
        gain_post = out.pop(prefix + "post_attention_layernorm.weight")
        out[prefix + "input_layernorm.weight"] = np.ones_like(gain_in)
        out[prefix + "post_attention_layernorm.weight"] = np.ones_like(gain_post)
        c, d = factors(config.num_kv_heads), factors(config.num_kv_heads)
        per_q_row = np.repeat(np.repeat(c, group), dim)
        per_kv_row_c, per_kv_row_d = np.repeat(c, dim), np.repeat(d, dim)
        out[attn + "q_proj.weight"] = params[attn + "q_proj.weight"] * gain_in * per_q_row[:, None]
        out[attn + "k_proj.weight"] = params[attn + "k_proj.weight"] * gain_in / per_kv_row_c[:, None]
        out[attn + "v_proj.weight"] = params[attn + "v_proj.weight"] * gain_in * per_kv_row_d[:, None]
        per_o_column = np.repeat(np.repeat(d, group), dim)
        out[attn + "o_proj.weight"] = params[attn + "o_proj.weight"] / per_o_column[None, :]
        e = factors(config.intermediate_size)
        out[mlp + "gate_proj.weight"] = params[mlp + "gate_proj.weight"] * gain_post
        out[mlp + "up_proj.weight"] = params[mlp + "up_proj.weight"] * gain_post * e[:, None]
        out[mlp + "down_proj.weight"] = params[mlp + "down_proj.weight"] / e[None, :]
    out["lm_head.weight"] = params["lm_head.weight"] * params["model.norm.weight"]
    out["model.norm.weight"] = np.ones_like(params["model.norm.weight"])
    return {name: value.astype(np.float32) for name, value in out.items()}


# --- vocabulary ---------------------------------------------------------------------------------

_VOCAB_TENSORS = ("model.embed_tokens.weight", "lm_head.weight")


def select_tokens(
    params: Params, config: ArchConfig, vocab: list[str], keep: np.ndarray
) -> tuple[Params, ArchConfig, list[str]]:
    """Keep token ids ``keep`` in that order (pruning and reordering): embedding and LM-head rows
    and the vocabulary list change together, so token strings keep their vectors."""
    _require_llama(config, "vocabulary")
    out = dict(params)
    for name in _VOCAB_TENSORS:
        out[name] = params[name][keep].copy()
    return out, config.replace(vocab_size=len(keep)), [vocab[int(index)] for index in keep]


def extend_vocab(
    params: Params, config: ArchConfig, vocab: list[str], new_tokens: list[str], rng: np.random.Generator
) -> tuple[Params, ArchConfig, list[str]]:
    """Append ``new_tokens``; their rows start at the mean row plus small noise, as
    ``transformers``' ``resize_token_embeddings`` does (mean and spread of the old rows)."""
    _require_llama(config, "vocab-extended")
    clashes = set(new_tokens) & set(vocab)
    if clashes:
        raise ZooError(f"cannot extend the vocabulary with tokens it already has: {sorted(clashes)[:5]}")
    out = dict(params)
    for name in _VOCAB_TENSORS:
        rows = params[name]
        fresh = rows.mean(0) + rng.normal(0, 1, (len(new_tokens), rows.shape[1])) * rows.std(0) * 0.1
        out[name] = np.concatenate([rows, fresh.astype(np.float32)])
    return out, config.replace(vocab_size=config.vocab_size + len(new_tokens)), [*vocab, *new_tokens]


# --- depth and width ----------------------------------------------------------------------------

_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.*)$")


def select_layers(
    params: Params, config: ArchConfig, layers: list[int]
) -> tuple[Params, ArchConfig, dict[int, int]]:
    """A model whose layer i is a copy of layer ``layers[i]``: dropping, subsampling and
    duplicating (depth up-scaling) layers are all this. Returns the layer map {new: old}."""
    if any(not 0 <= layer < config.num_layers for layer in layers) or not layers:
        raise ZooError(f"layer list {layers} does not fit a {config.num_layers}-layer model")
    by_layer: dict[int, dict[str, np.ndarray]] = {}
    out: Params = {}
    for name, value in params.items():
        match = _LAYER.match(name)
        if match:
            by_layer.setdefault(int(match.group(1)), {})[match.group(2)] = value
        else:
            out[name] = value
    ordered: Params = {"model.embed_tokens.weight": out.pop("model.embed_tokens.weight")}
    for new, old in enumerate(layers):
        for suffix, value in by_layer[old].items():
            ordered[f"model.layers.{new}.{suffix}"] = value.copy()
    ordered.update(out)
    return ordered, config.replace(num_layers=len(layers)), dict(enumerate(layers))


def prune_mlp_width(params: Params, config: ArchConfig, keep_fraction: float) -> tuple[Params, ArchConfig]:
    """Drop the MLP units of least magnitude (|up row| * |down column|) in every layer, keeping
    the survivors in their original order (what structured-pruning tools do)."""
    _require_llama(config, "width-pruned")
    keep_count = max(1, round(config.intermediate_size * keep_fraction))
    out = dict(params)
    for layer in range(config.num_layers):
        mlp = layer_prefix(config, layer) + "mlp."
        up, down = params[mlp + "up_proj.weight"], params[mlp + "down_proj.weight"]
        importance = np.linalg.norm(up, axis=1) * np.linalg.norm(down, axis=0)
        keep = np.sort(np.argsort(-importance, kind="stable")[:keep_count])
        out[mlp + "gate_proj.weight"] = params[mlp + "gate_proj.weight"][keep]
        out[mlp + "up_proj.weight"] = up[keep]
        out[mlp + "down_proj.weight"] = down[:, keep]
    return out, config.replace(intermediate_size=keep_count)


def upcycle_to_moe(
    params: Params, config: ArchConfig, experts: int, rng: np.random.Generator
) -> tuple[Params, ArchConfig]:
    """Sparse upcycling: every expert starts as a copy of the dense MLP, plus a fresh router.

    Because the top-k routing weights sum to one and all experts are equal, the upcycled model
    computes exactly what the dense one did until it is trained.
    """
    _require_llama(config, "upcycled-moe")
    out: Params = {}
    for name, value in params.items():
        match = _LAYER.match(name)
        if not match or not match.group(2).startswith("mlp."):
            out[name] = value
            continue
        prefix = f"model.layers.{match.group(1)}.block_sparse_moe."
        role = {"mlp.gate_proj.weight": "w1", "mlp.down_proj.weight": "w2", "mlp.up_proj.weight": "w3"}
        for expert in range(experts):
            out[f"{prefix}experts.{expert}.{role[match.group(2)]}.weight"] = value.copy()
        if match.group(2) == "mlp.gate_proj.weight":
            out[prefix + "gate.weight"] = rng.normal(0, 0.02, (experts, config.hidden_size)).astype(
                np.float32
            )
    moe_config = config.replace(num_experts=experts, experts_per_token=min(2, experts))
    # Store tensors in the canonical order of the MoE architecture.

    return {name: out[name] for name in parameter_shapes(moe_config)}, moe_config


def average(models: list[Params], weights: list[float] | None = None) -> Params:
    """A linear merge ("model soup") of models with identical tensor names and shapes."""
    weights = weights or [1.0 / len(models)] * len(models)
    return {
        name: sum(weight * model[name] for weight, model in zip(weights, models, strict=True)).astype(
            np.float32
        )
        for name in models[0]
    }
