"""ONNX export of a llama zoo model with int8 weights, shaped like an exporter's output.

The graph computes the whole model (input ``input_ids`` -> output ``logits``) from standard
opset-21 operators, so ``onnx.reference`` can run it. Every name is opaque, as torch's dynamo
exporter writes them (``val_12``): nothing says "layer 3 q_proj". Linear weights are stored
transposed (``[in, out]``, what ``MatMul`` multiplies by) as int8 initializers ``val_N_q`` with a
per-output-column ``val_N_scale``, dequantised in the graph: attention projections through
``DequantizeLinear(axis=1)``, MLP and LM head through ``Cast`` + ``Mul`` (both patterns occur in
quantised exports). Embedding and norm gains stay float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modeltrace.errors import ZooError
from modeltrace.zoo.arch import ArchConfig, Params, layer_prefix
from modeltrace.zoo.quantize import quantize_int8_rows

OPSET = 21


class _GraphBuilder:
    """Collects nodes and initializers, handing out the opaque ``val_N`` names."""

    def __init__(self) -> None:
        import onnx  # a core dependency, imported here because only this export needs it

        self.onnx = onnx
        self.helper = onnx.helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self) -> str:
        self._count += 1
        return f"val_{self._count}"

    def constant(self, value: np.ndarray, name: str | None = None) -> str:
        name = name or self.name()
        self.initializers.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, *inputs: str, **attributes: Any) -> str:
        output = self.name()
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [output], **attributes))
        return output

    def linear(self, x: str, weight: np.ndarray, style: str) -> str:
        """x @ W^T with W quantised to int8 per output row and stored transposed."""
        codes, scale = quantize_int8_rows(weight)
        base = self.name()
        q = self.constant(np.ascontiguousarray(codes.T), base + "_q")
        s = self.constant(scale[:, 0].astype(np.float32), base + "_scale")
        if style == "dequantize":
            dequantised = self.op("DequantizeLinear", q, s, axis=1)
        else:
            dequantised = self.op("Mul", self.op("Cast", q, to=self.onnx.TensorProto.FLOAT), s)
        return self.op("MatMul", x, dequantised)


def _rms_norm(g: _GraphBuilder, x: str, gain: np.ndarray, eps: str) -> str:
    last_axis = g.constant(np.array([-1], np.int64))
    mean_square = g.op("ReduceMean", g.op("Mul", x, x), last_axis, keepdims=1)
    inverse = g.op("Reciprocal", g.op("Sqrt", g.op("Add", mean_square, eps)))
    return g.op("Mul", g.op("Mul", x, inverse), g.constant(gain.astype(np.float32)))


def _heads(g: _GraphBuilder, x: str, count: int, dim: int) -> str:
    """[B, T, count*dim] -> [B, count, T, dim]."""
    shaped = g.op("Reshape", x, g.constant(np.array([0, 0, count, dim], np.int64)))
    return g.op("Transpose", shaped, perm=[0, 2, 1, 3])


def _rotate(g: _GraphBuilder, x: str, cos: str, sin: str, half: str) -> str:
    first, second = g.name(), g.name()
    g.nodes.append(g.helper.make_node("Split", [x, half], [first, second], axis=-1))
    rotated = g.op("Concat", g.op("Neg", second), first, axis=-1)
    return g.op("Add", g.op("Mul", x, cos), g.op("Mul", rotated, sin))


def _rotary_tables(config: ArchConfig) -> tuple[np.ndarray, np.ndarray]:
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    angles = np.outer(np.arange(config.max_positions, dtype=np.float64), inv_freq)
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def build_graph(params: Params, config: ArchConfig, name: str) -> Any:
    """The ONNX ``ModelProto`` of the whole model with int8 linear weights."""
    if config.family != "llama" or config.num_experts:
        raise ZooError(f"ONNX export is written for dense llama models, not {config.family}")
    g = _GraphBuilder()
    heads, kv_heads, dim = config.num_heads, config.num_kv_heads, config.head_dim
    eps = g.constant(np.array(config.norm_eps, np.float32))
    length = g.op("Shape", "input_ids", start=1, end=2)  # [T]
    zero = g.constant(np.array([0], np.int64))
    cos_table, sin_table = _rotary_tables(config)
    cos = g.op("Slice", g.constant(cos_table), zero, length, zero)
    sin = g.op("Slice", g.constant(sin_table), zero, length, zero)
    causal = np.triu(np.full((config.max_positions, config.max_positions), -1e9, np.float32), k=1)
    square = g.op("Concat", length, length, axis=0)
    mask = g.op("Slice", g.constant(causal), g.constant(np.array([0, 0], np.int64)), square)
    half = g.constant(np.array([dim // 2, dim // 2], np.int64))
    inverse_sqrt_dim = g.constant(np.array(1.0 / np.sqrt(dim), np.float32))
    kv_index = g.constant(np.repeat(np.arange(kv_heads), heads // kv_heads).astype(np.int64))
    x = g.op("Gather", g.constant(params["model.embed_tokens.weight"]), "input_ids", axis=0)
    for layer in range(config.num_layers):
        p = layer_prefix(config, layer)
        h = _rms_norm(g, x, params[p + "input_layernorm.weight"], eps)
        q = _heads(g, g.linear(h, params[p + "self_attn.q_proj.weight"], "dequantize"), heads, dim)
        k = _heads(g, g.linear(h, params[p + "self_attn.k_proj.weight"], "dequantize"), kv_heads, dim)
        v = _heads(g, g.linear(h, params[p + "self_attn.v_proj.weight"], "dequantize"), kv_heads, dim)
        q, k = _rotate(g, q, cos, sin, half), _rotate(g, k, cos, sin, half)
        k, v = g.op("Gather", k, kv_index, axis=1), g.op("Gather", v, kv_index, axis=1)
        scores = g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2]))
        scores = g.op("Add", g.op("Mul", scores, inverse_sqrt_dim), mask)
        attended = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        merged = g.op(
            "Reshape",
            g.op("Transpose", attended, perm=[0, 2, 1, 3]),
            g.constant(np.array([0, 0, heads * dim], np.int64)),
        )
        x = g.op("Add", x, g.linear(merged, params[p + "self_attn.o_proj.weight"], "dequantize"))
        h = _rms_norm(g, x, params[p + "post_attention_layernorm.weight"], eps)
        gate = g.linear(h, params[p + "mlp.gate_proj.weight"], "cast")
        up = g.linear(h, params[p + "mlp.up_proj.weight"], "cast")
        hidden = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up)
        x = g.op("Add", x, g.linear(hidden, params[p + "mlp.down_proj.weight"], "cast"))
    x = _rms_norm(g, x, params["model.norm.weight"], eps)
    out = g.linear(x, params["lm_head.weight"], "cast")
    g.nodes.append(g.helper.make_node("Identity", [out], ["logits"]))
    helper, tensor = g.helper, g.onnx.TensorProto
    graph = helper.make_graph(
        g.nodes,
        "main_graph",
        [helper.make_tensor_value_info("input_ids", tensor.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", tensor.FLOAT, ["batch", "sequence", config.vocab_size])],
        g.initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="modeltrace-zoo"
    )
    model.ir_version = 10
    helper.set_model_props(model, {"name": name})
    g.onnx.checker.check_model(model)
    return model


def write_onnx(path: Path, params: Params, config: ArchConfig, name: str) -> Path:
    import onnx

    onnx.save_model(build_graph(params, config, name), str(path))
    return path


def dequantised(params: Params) -> Params:
    """The parameters the exported graph actually computes with (linear weights via int8)."""
    out = dict(params)
    for key, value in params.items():
        if key.endswith("_proj.weight") or key == "lm_head.weight":
            codes, scale = quantize_int8_rows(value)
            out[key] = codes.astype(np.float32) * scale
    return out
