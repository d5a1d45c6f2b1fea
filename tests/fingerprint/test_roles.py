"""Which tensor plays which role, from names or, where weights are anonymous, from the graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

from modeltrace.fingerprint.build import build_fingerprint
from modeltrace.fingerprint.roles import assign_roles
from modeltrace.formats.capabilities import HasGraph
from modeltrace.formats.detect import open_model

HIDDEN, INNER, VOCAB, LAYERS = 8, 32, 40, 3


def _anonymous_mlp_stack(path: Path, rng: np.random.Generator) -> dict[str, int]:
    """An exported-style ONNX graph: Gather(embedding) then, per layer, x + down(relu(x @ up)), with
    every weight named ``val_N`` and the initializers stored in the REVERSE of graph order (exporters do
    not promise any order). Returns each up weight's layer in graph order."""
    nodes = [helper.make_node("Gather", ["embed", "ids"], ["x0"])]
    initializers = [numpy_helper.from_array(rng.standard_normal((VOCAB, HIDDEN)).astype(np.float32), "embed")]
    layer_of_up: dict[str, int] = {}
    for layer in range(LAYERS):
        up, down = f"val_{100 - 2 * layer}", f"val_{99 - 2 * layer}"  # names say nothing of the order
        layer_of_up[up] = layer
        for name, shape in ((up, (HIDDEN, INNER)), (down, (INNER, HIDDEN))):
            initializers.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name))
        x, h, a, y, out = (f"x{layer}", f"h{layer}", f"a{layer}", f"y{layer}", f"x{layer + 1}")
        nodes += [
            helper.make_node("MatMul", [x, up], [h]),
            helper.make_node("Relu", [h], [a]),
            helper.make_node("MatMul", [a, down], [y]),
            helper.make_node("Add", [x, y], [out]),
        ]
    graph = helper.make_graph(
        nodes,
        "anonymous",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4])],
        [helper.make_tensor_value_info(f"x{LAYERS}", TensorProto.FLOAT, [1, 4, HIDDEN])],
        initializer=[initializers[0], *reversed(initializers[1:])],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return layer_of_up


def test_anonymous_onnx_roles_come_from_graph_order(tmp_path: Path) -> None:
    layer_of_up = _anonymous_mlp_stack(tmp_path / "model.onnx", np.random.default_rng(0))
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": VOCAB}))
    with open_model(tmp_path) as source:
        reader = source.weights
        assert isinstance(reader, HasGraph)
        roles = assign_roles(
            reader.tensors(), vocab_size=VOCAB, hidden_size=None, format="onnx", graph=reader.graph()
        )
        # Storage order is reversed: only the graph puts the first MLP in layer 0.
        stored = [name for name in reader.tensors() if name in layer_of_up]
        assert [layer_of_up[name] for name in stored] == list(reversed(range(LAYERS)))
        assert roles.method == "graph order" and roles.embedding == "embed"
        assert [layer_of_up[block.up] for block in roles.blocks] == list(range(LAYERS))
        assert [block.layer for block in roles.blocks] == list(range(LAYERS))
        assert all(block.transposed and block.units == INNER for block in roles.blocks)
        fingerprint = build_fingerprint(source)
    assert fingerprint.header["role_method"] == "graph order"
    assert [block.tensors[0] for block in fingerprint.blocks] == ["val_100", "val_98", "val_96"]
