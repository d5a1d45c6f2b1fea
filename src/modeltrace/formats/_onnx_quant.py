"""Find the int8/uint8 (and other integer) weights an ONNX graph dequantises, and how.

Recognised patterns, each folded into one float32 logical tensor ``(q - zero_point) * scale``:

- ``DequantizeLinear(q, scale[, zero_point])``, per tensor, per axis (``axis``) or blocked
  (``block_size``, opset 21). Logical name: the node's output.
- ``Cast(q, to=float) -> Mul(·, scale)``, optionally ``-> Sub(·, zero_point)`` before the Mul, as
  exporters write by hand (e.g. ``X_q``, ``X_scale`` -> ``X``). Logical name: the Mul's output.
- ``MatMulInteger(a, q, a_zp, q_zp) -> Cast -> Mul(·, Mul(a_scale, q_scale))``: onnxruntime's
  dynamic quantisation (``W_quantized``, ``W_scale``, ``W_zero_point``).
- ``QLinearMatMul(..., q, q_scale, q_zp, ...)``: onnxruntime's static quantisation.
  For these two the graph never materialises the float weight; the logical name is the stored
  name without its ``_quantized`` suffix (``W_quantized`` -> ``W``), else ``<name>_dequantized``.

Scales and zero points must be stored tensors (initializers or Constant nodes) whose shapes
broadcast to the quantised tensor's; anything else is left unfolded and read as stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modeltrace.formats.onnx_graph import Graph, Node
from modeltrace.types import TensorInfo

_QUANTISED_DTYPES = frozenset({"I8", "U8", "I16", "U16", "I32", "I4", "U4", "F8_E4M3", "F8_E5M2"})
_FLOAT_DTYPES = frozenset({"F32", "F16", "BF16", "F64"})
#: ONNX TensorProto codes of the float types a Cast may produce before the rescaling Mul.
_FLOAT_CAST_TARGETS = frozenset({1, 10, 11, 16})


@dataclass(frozen=True)
class Dequantized:
    """How one logical float tensor is computed from stored tensors."""

    name: str  #: logical name
    pattern: str  #: "DequantizeLinear", "Cast+Mul", "Cast+Sub+Mul", "MatMulInteger", "QLinearMatMul"
    quantized: str  #: stored integer tensor
    scale: str  #: stored float tensor
    zero_point: str | None = None
    #: DequantizeLinear per-axis / blocked axis; None: numpy broadcasting of scale to the tensor.
    axis: int | None = None
    block_size: int = 0


def _broadcasts(small: tuple[int, ...], big: tuple[int, ...]) -> bool:
    """Whether ``small`` broadcasts to exactly ``big`` (numpy rules, trailing alignment)."""
    if len(small) > len(big):
        return False
    return all(s in (1, b) for s, b in zip(small[::-1], big[::-1], strict=False))


def _scale_fits(scale: TensorInfo, quantized: TensorInfo, axis: int | None, block_size: int) -> bool:
    shape = quantized.shape
    if axis is None or (scale.numel == 1 and block_size == 0):
        return _broadcasts(scale.shape, shape)
    if not -len(shape) <= axis < len(shape):
        return False
    axis %= len(shape)
    if block_size:
        expected = list(shape)
        expected[axis] = -(-shape[axis] // block_size)
        return list(scale.shape) == expected
    return scale.shape == (shape[axis],)


class _Finder:
    def __init__(self, graph: Graph, stored: Mapping[str, TensorInfo]) -> None:
        self.graph = graph
        self.stored = stored
        self.found: dict[str, Dequantized] = {}
        self.used_nodes: set[int] = set()  # ids of nodes that belong to a folded pattern

    def _is(self, name: str, dtypes: frozenset[str]) -> bool:
        return name in self.stored and self.stored[name].dtype in dtypes

    def _add(self, found: Dequantized, nodes: list[Node]) -> None:
        if found.name in self.found or found.name in self.stored:
            return  # a name clash (hostile or odd graph): keep the tensors as stored
        self.found[found.name] = found
        self.used_nodes.update(id(node) for node in nodes)

    def _fits(self, q: str, scale: str, zero_point: str | None, axis: int | None, block: int) -> bool:
        if not (self._is(q, _QUANTISED_DTYPES) and self._is(scale, _FLOAT_DTYPES)):
            return False
        if zero_point is not None and zero_point not in self.stored:
            return False
        quantized = self.stored[q]
        checks = [self.stored[scale]] + ([self.stored[zero_point]] if zero_point else [])
        return all(_scale_fits(info, quantized, axis, block) for info in checks)

    def dequantize_linear(self, node: Node) -> None:
        if len(node.inputs) < 2 or not node.outputs:
            return
        q, scale = node.inputs[0], node.inputs[1]
        zero_point = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        axis_attribute = node.attributes.get("axis", 1)
        block = node.attributes.get("block_size", 0)
        if not isinstance(axis_attribute, int) or not isinstance(block, int) or block < 0:
            return
        per_tensor = q in self.stored and scale in self.stored and self.stored[scale].numel == 1
        axis = None if per_tensor and not block else axis_attribute
        if self._fits(q, scale, zero_point, axis, block):
            self._add(
                Dequantized(node.outputs[0], "DequantizeLinear", q, scale, zero_point, axis, block), [node]
            )

    def _only_consumer(self, tensor: str) -> Node | None:
        following = self.graph.consumers(tensor)
        return following[0] if len(following) == 1 and following[0].outputs else None

    def cast_mul(self, cast: Node) -> None:
        if not cast.inputs or not cast.outputs or cast.attributes.get("to") not in _FLOAT_CAST_TARGETS:
            return
        q, value = cast.inputs[0], cast.outputs[0]
        step = self._only_consumer(value)
        chain = [cast]
        zero_point = None
        if step is not None and step.op_type == "Sub" and len(step.inputs) == 2 and step.inputs[0] == value:
            zero_point = step.inputs[1]
            chain.append(step)
            value = step.outputs[0]
            step = self._only_consumer(value)
        if step is None or step.op_type != "Mul" or len(step.inputs) != 2 or value not in step.inputs:
            return
        scale = step.inputs[1] if step.inputs[0] == value else step.inputs[0]
        if self._fits(q, scale, zero_point, None, 0):
            pattern = "Cast+Sub+Mul" if zero_point else "Cast+Mul"
            self._add(Dequantized(step.outputs[0], pattern, q, scale, zero_point), [*chain, step])

    def matmul_integer(self, node: Node) -> None:
        if len(node.inputs) < 2 or not node.outputs:
            return
        q = node.inputs[1]
        zero_point = node.inputs[3] if len(node.inputs) > 3 and node.inputs[3] else None
        cast = self._only_consumer(node.outputs[0])
        mul = self._only_consumer(cast.outputs[0]) if cast is not None and cast.op_type == "Cast" else None
        if mul is None or mul.op_type != "Mul":
            return
        for other in mul.inputs:
            producer = self.graph.producer(other)
            if producer is None or producer.op_type != "Mul":
                continue
            scales = [name for name in producer.inputs if self._is(name, _FLOAT_DTYPES)]
            if len(scales) == 1 and self._fits(q, scales[0], zero_point, None, 0):
                self._add(Dequantized(_base_name(q), "MatMulInteger", q, scales[0], zero_point), [])
                return

    def qlinear_matmul(self, node: Node) -> None:
        if len(node.inputs) < 6:
            return
        q, scale, zero_point = node.inputs[3], node.inputs[4], node.inputs[5] or None
        if self._fits(q, scale, zero_point, None, 0):
            self._add(Dequantized(_base_name(q), "QLinearMatMul", q, scale, zero_point), [])


def _base_name(quantized: str) -> str:
    return (
        quantized.removesuffix("_quantized")
        if quantized.endswith("_quantized")
        else quantized + "_dequantized"
    )


def find_dequantized(
    graph: Graph, stored: Mapping[str, TensorInfo]
) -> tuple[dict[str, Dequantized], set[str]]:
    """Logical dequantised tensors, and the stored names they absorb (hidden from ``tensors()``).

    A stored tensor is absorbed only when every node that reads it belongs to a folded
    DequantizeLinear / Cast pattern: a scale also used elsewhere stays visible.
    """
    finder = _Finder(graph, stored)
    handlers = {
        "DequantizeLinear": finder.dequantize_linear,
        "Cast": finder.cast_mul,
        "MatMulInteger": finder.matmul_integer,
        "QLinearMatMul": finder.qlinear_matmul,
    }
    for node in graph.nodes:
        handler = handlers.get(node.op_type)
        if handler is not None and node.domain in ("", "ai.onnx"):
            handler(node)
    absorbed: set[str] = set()
    for found in finder.found.values():
        for part in (found.quantized, found.scale, found.zero_point):
            if part is None:
                continue
            readers = graph.consumers(part)
            if found.pattern in ("MatMulInteger", "QLinearMatMul") or all(
                id(node) in finder.used_nodes for node in readers
            ):
                absorbed.add(part)
    return finder.found, absorbed
