"""The computation graph of an ONNX model, reduced to what lineage needs: who feeds which MatMul.

Exporters name weights ``onnx::MatMul_470`` or ``val_49``, so a tensor's role (query, key, MLP up
projection ...) often has to come from the graph instead of the name. :class:`Graph` lists the
nodes and answers two questions: which nodes consume a tensor (:meth:`Graph.consumers`), and, for
every matrix multiplication, which weight tensor it multiplies by and in which layout
(:meth:`Graph.matmul_weights`), and which of those products are attention values, the operand that
the softmaxed scores multiply (:meth:`Graph.attention_value_weights`).

Layout convention: ``transposed`` is True when the weight is stored ``[in, out]`` (ONNX ``x @ W``),
i.e. transposed relative to a PyTorch ``nn.Linear`` weight ``[out, in]``; ``weight.T`` then gives
the PyTorch layout. This module has no dependency on the ``onnx`` package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

#: Ops that multiply by a weight matrix, and the input positions that may hold the weight (A, B).
_MATMUL_OPERANDS: dict[str, tuple[int, int]] = {
    "MatMul": (0, 1),
    "Gemm": (0, 1),
    "MatMulInteger": (0, 1),
    "QLinearMatMul": (0, 3),
}
#: Ops a weight may pass through between its initializer and the MatMul without changing values.
_PASS_THROUGH = frozenset({"Identity", "Cast"})
#: Ops between the softmax and the scores @ values product (dtype casts, NaN guards, dropout).
_AFTER_SOFTMAX = frozenset({"Cast", "Identity", "Dropout", "Where"})
#: Ops between a value projection and the scores @ values product: bias and dequantisation scale
#: (Add, Mul: one activation input), head split and layout, and the key/value head repeat of
#: grouped-query attention (Gather, Expand on the head axis); all take the activation as input 0.
_VALUE_PATH = frozenset(
    {"Reshape", "Transpose", "Cast", "Identity", "Squeeze", "Unsqueeze", "Gather", "Expand"}
)
_VALUE_SCALES = frozenset({"Add", "Mul"})


@dataclass(frozen=True)
class Node:
    """One graph node; ``attributes`` holds the int/float/string (list) attributes only."""

    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    domain: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)


def _node_label(node: Node, index: int) -> str:
    """A node's name, or ``op_type#index`` for an unnamed one (what :class:`MatMulWeight` reports)."""
    return node.name or f"{node.op_type}#{index}"


@dataclass(frozen=True)
class MatMulWeight:
    """A matrix multiplication and the weight tensor it multiplies by."""

    node: str  #: node name (or ``op_type#index`` when the node is unnamed)
    op_type: str  #: MatMul, Gemm, MatMulInteger or QLinearMatMul
    weight: str  #: logical tensor name (a key of ``ONNXReader.tensors()``)
    input_index: int  #: which node input carries it (1 for the usual ``x @ W``)
    transposed: bool  #: stored [in, out]: ``weight.T`` is the PyTorch Linear layout [out, in]
    bias: str | None = None  #: logical tensor added to the product (Gemm C, or a following Add)


@dataclass(frozen=True)
class Graph:
    """Top-level nodes of an ONNX graph (subgraphs of If/Loop are not included)."""

    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    #: Names of the logical tensors (initializers, Constant outputs, dequantised weights).
    tensors: frozenset[str]
    #: Stored quantised tensor name -> logical name, for ops that consume the quantised tensor itself.
    aliases: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def _consumer_index(self) -> dict[str, tuple[Node, ...]]:
        index: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in dict.fromkeys(node.inputs):
                index.setdefault(name, []).append(node)
        # Tuples, handed out as they are: a hostile graph fans one tensor out to 30,000 nodes,
        # and copying that list on every lookup made the walks quadratic.
        return {name: tuple(nodes) for name, nodes in index.items()}

    @cached_property
    def _producer_index(self) -> dict[str, Node]:
        return {name: node for node in self.nodes for name in node.outputs if name}

    def consumers(self, tensor: str) -> tuple[Node, ...]:
        """Nodes that take ``tensor`` as an input, in graph order."""
        return self._consumer_index.get(tensor, ())

    def producer(self, tensor: str) -> Node | None:
        """The node whose output is ``tensor`` (None for graph inputs and initializers)."""
        return self._producer_index.get(tensor)

    def _weight_behind(self, name: str) -> tuple[str, bool] | None:
        """The logical tensor feeding ``name`` through Transpose/Identity/Cast hops, and whether an
        odd number of 2-D transposes lies on the way."""
        flipped = False
        for _ in range(8):  # a weight is never more than a few hops from its initializer
            if name in self.tensors:
                return name, flipped
            if name in self.aliases:
                return self.aliases[name], flipped
            node = self.producer(name)
            if node is None or not node.inputs:
                return None
            if node.op_type == "Transpose":
                perm = list(node.attributes.get("perm", [1, 0]))
                if perm != [1, 0]:
                    return None
                flipped = not flipped
            elif node.op_type not in _PASS_THROUGH:
                return None
            name = node.inputs[0]
        return None

    def _bias_after(self, node: Node) -> str | None:
        """The logical tensor added to the product: Gemm's C, or the other input of an Add that
        consumes the product (for MatMulInteger, after its rescaling Cast and Mul)."""
        if node.op_type == "Gemm":
            if len(node.inputs) > 2 and node.inputs[2] in self.tensors:
                return node.inputs[2]
            return None
        product = node.outputs[0] if node.outputs else ""
        for _ in range(3):
            following = self.consumers(product)
            if len(following) != 1 or not following[0].outputs:
                return None
            step = following[0]
            if step.op_type == "Add":
                others = [name for name in step.inputs if name != product and name in self.tensors]
                return others[0] if len(others) == 1 else None
            if node.op_type != "MatMulInteger" or step.op_type not in ("Cast", "Mul"):
                return None
            product = step.outputs[0]
        return None

    def matmul_weights(self) -> list[MatMulWeight]:
        """Every MatMul/Gemm (and quantised variant) that multiplies by a stored weight, in graph order."""
        return list(self._matmul_weights)

    @cached_property
    def _matmul_weights(self) -> tuple[MatMulWeight, ...]:
        # Computed once: roles and the attention-value filter both ask, and graphs can be large.
        found: list[MatMulWeight] = []
        for index, node in enumerate(self.nodes):
            operands = _MATMUL_OPERANDS.get(node.op_type)
            if operands is None or node.domain not in ("", "ai.onnx"):
                continue
            # The weight is usually B (x @ W); fall back to A for W @ x.
            for position, operand in ((1, operands[1]), (0, operands[0])):
                if operand >= len(node.inputs):
                    continue
                source = self._weight_behind(node.inputs[operand])
                if source is None:
                    continue
                weight, flipped = source
                if node.op_type == "Gemm" and position == 1:
                    transposed = not node.attributes.get("transB", 0)  # B' = [in, out]
                elif node.op_type == "Gemm":
                    transposed = bool(node.attributes.get("transA", 0))  # A' = [out, in]
                else:
                    transposed = position == 1  # x @ W stores [in, out]; W @ x stores [out, in]
                found.append(
                    MatMulWeight(
                        node=_node_label(node, index),
                        op_type=node.op_type,
                        weight=weight,
                        input_index=operand,
                        transposed=transposed != flipped,
                        bias=self._bias_after(node),
                    )
                )
                break
        return tuple(found)

    def _scores_times_values(self) -> list[Node]:
        """The MatMuls whose first operand comes from a Softmax (through casts, NaN guards, dropout).

        One breadth-first walk from every softmax at once, each tensor visited once: a product
        is found when it lies within four hops of some softmax, in time linear in the graph."""
        found: dict[str, Node] = {}
        frontier = [node.outputs[0] for node in self.nodes if node.op_type == "Softmax" and node.outputs]
        seen = set(frontier)
        for _ in range(4):
            following = []
            for tensor in frontier:
                for node in self.consumers(tensor):
                    if not node.outputs:
                        continue  # a node without outputs feeds nothing (invalid, but seen in the wild)
                    if node.op_type == "MatMul" and node.inputs[0] == tensor:
                        found.setdefault(node.outputs[0], node)
                    elif node.op_type in _AFTER_SOFTMAX and node.outputs[0] not in seen:
                        seen.add(node.outputs[0])
                        following.append(node.outputs[0])
            frontier = following
        return list(found.values())

    def _projection_behind(self, tensor: str) -> Node | None:
        """The weight product that ``tensor`` comes from, through bias adds, head reshapes and casts."""
        for _ in range(10):
            node = self.producer(tensor)
            if node is None:
                return None
            if node.op_type in _MATMUL_OPERANDS:
                return node
            if node.op_type in _VALUE_SCALES:
                activations = [name for name in node.inputs[:2] if name and name not in self.tensors]
                if len(activations) != 1:
                    return None  # two activations meeting (or none): not a bias or a scale on one product
                tensor = activations[0]
            elif node.op_type in _VALUE_PATH and node.inputs:
                tensor = node.inputs[0]
            else:
                return None
        return None

    def attention_value_weights(self) -> list[MatMulWeight]:
        """The value projection of every attention, in graph order: the weight product that the
        softmaxed scores multiply (``softmax(q kᵀ) @ (x W_v + b)``). Found from the graph alone, so it
        holds for exports that name weights ``val_65``; fused QKV projections (a Split on the way) are
        not followed."""
        projections: set[int] = set()  # ids of the weight products the scores multiply
        for product in self._scores_times_values():
            projection = self._projection_behind(product.inputs[1]) if len(product.inputs) >= 2 else None
            if projection is not None:
                projections.add(id(projection))
        labels = {
            _node_label(node, index) for index, node in enumerate(self.nodes) if id(node) in projections
        }
        return [weight for weight in self.matmul_weights() if weight.node in labels]  # already in graph order
