"""Hostile safetensors, ONNX and GGUF files and model folders for the hostile-file tests.

Each builder writes into a folder it is given and returns the path a user would pass to the CLI.
Everything is built in the test and stays small on disk.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

HIDDEN = 8


def safetensors_bytes(header: str, data: bytes = b"") -> bytes:
    """A safetensors file from a raw JSON header text (so it may hold what json.dumps refuses)."""
    encoded = header.encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


def tiny_llama_tensors() -> dict[str, np.ndarray]:
    """A one-layer Llama-named model, enough for fingerprint and compare to get going."""
    rng = np.random.default_rng(0)
    shapes = {
        "model.embed_tokens.weight": (32, HIDDEN),
        "model.layers.0.self_attn.q_proj.weight": (HIDDEN, HIDDEN),
        "model.layers.0.self_attn.k_proj.weight": (HIDDEN, HIDDEN),
        "model.layers.0.self_attn.v_proj.weight": (HIDDEN, HIDDEN),
        "model.layers.0.self_attn.o_proj.weight": (HIDDEN, HIDDEN),
        "model.layers.0.mlp.gate_proj.weight": (16, HIDDEN),
        "model.layers.0.mlp.up_proj.weight": (16, HIDDEN),
        "model.layers.0.mlp.down_proj.weight": (HIDDEN, 16),
        "model.layers.0.input_layernorm.weight": (HIDDEN,),
        "model.layers.0.post_attention_layernorm.weight": (HIDDEN,),
        "model.norm.weight": (HIDDEN,),
        "lm_head.weight": (32, HIDDEN),
    }
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def safetensors_with(extra_header: dict[str, str], tensors: dict[str, np.ndarray] | None = None) -> bytes:
    """The tiny Llama plus header entries given as raw JSON text (name -> entry text)."""
    tensors = tiny_llama_tensors() if tensors is None else tensors
    entries: list[str] = []
    data = bytearray()
    for name, array in tensors.items():
        entry = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [len(data), len(data) + array.nbytes],
        }
        entries.append(f"{json.dumps(name)}: {json.dumps(entry)}")
        data += array.tobytes()
    entries += [f"{json.dumps(name)}: {entry}" for name, entry in extra_header.items()]
    return safetensors_bytes("{" + ", ".join(entries) + "}", bytes(data))


def huge_integer_header(digits: int = 5000) -> bytes:
    """A safetensors header whose data offset is an integer of ``digits`` digits."""
    huge = "9" * digits
    return safetensors_bytes('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, ' + huge + "]}}")


def empty_with_huge_dim(shape: list[int], name: str = "model.layers.0.self_attn.q_proj.weight") -> bytes:
    """The tiny Llama with one zero-element tensor declaring a huge other dimension."""
    tensors = tiny_llama_tensors()
    tensors.pop(name, None)
    entry = json.dumps({"dtype": "F32", "shape": shape, "data_offsets": [0, 0]})
    return safetensors_with({name: entry}, tensors)


def stacked_experts(experts: int = 1 << 40) -> bytes:
    """Stacked expert tensors ``[experts, units, hidden]`` (llama.cpp's ``ffn_*_exps`` names)
    declaring 2^40 experts of zero units: no bytes, but a loop per expert in a naive reader."""
    entries = {
        f"model.layers.0.{part}.weight": json.dumps(
            {"dtype": "F32", "shape": [experts, 0, HIDDEN], "data_offsets": [0, 0]}
        )
        for part in ("ffn_up_exps", "ffn_gate_exps", "ffn_down_exps")
    }
    return safetensors_with(entries)


# -- ONNX ------------------------------------------------------------------------------------------


def onnx_model(nodes: list, initializers: list, outputs: tuple[str, ...] = ("y",)) -> bytes:
    """A graph around ``nodes`` with a token embedding in front, so that fingerprint gets as far
    as the graph walks (matmul weights, attention values)."""
    from onnx import TensorProto, helper, numpy_helper

    embedding = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((32, HIDDEN)).astype(np.float32), "model.embed_tokens.weight"
    )
    graph = helper.make_graph(
        [helper.make_node("Gather", ["model.embed_tokens.weight", "ids"], ["x"]), *nodes],
        "hostile",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        [embedding, *initializers],
    )
    return helper.make_model(graph).SerializeToString()


def _weight(name: str, shape: tuple[int, ...] = (HIDDEN, HIDDEN)) -> object:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ones(shape, dtype=np.float32), name)


def onnx_softmax_fanout(width: int = 30_000) -> bytes:
    """One Softmax whose output feeds ``width`` MatMuls by one weight, all writing the same output
    name, which ``width`` Adds consume: every walk from a product sees the whole fan-out."""
    from onnx import helper

    nodes = [helper.make_node("Softmax", ["x"], ["s"])]
    nodes += [helper.make_node("MatMul", ["s", "w"], ["m"]) for _ in range(width)]
    nodes += [helper.make_node("Cast", ["s"], [f"c{index}"], to=1) for index in range(width)]
    nodes += [helper.make_node("Add", ["m", "b"], ["y"]) for _ in range(width)]
    return onnx_model(nodes, [_weight("w"), _weight("b", (HIDDEN,))])


def onnx_without_output(op_type: str) -> bytes:
    """A MatMul or Softmax node with no output (the spec requires one; the reader must not care)."""
    from onnx import helper

    nodes = [helper.make_node("Softmax", ["x"], ["s"] if op_type != "Softmax" else [])]
    nodes.append(helper.make_node("MatMul", ["s" if op_type != "Softmax" else "x", "w"], []))
    if op_type != "MatMul":
        nodes.append(helper.make_node("MatMul", ["x", "w"], ["y"]))
    return onnx_model(nodes, [_weight("w")])


def onnx_empty_with_huge_dim(dims: list[int]) -> bytes:
    """An initializer with zero elements and a huge other dimension, used by a MatMul."""
    from onnx import TensorProto, helper

    empty = helper.make_tensor("w", TensorProto.FLOAT, dims, [])
    return onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [empty])


def onnx_stacked_experts(experts: int = 1 << 40) -> bytes:
    """Stacked expert initializers ``[experts, 0, hidden]`` beside the embedding, read by a MatMul."""
    from onnx import TensorProto, helper

    stacked = [
        helper.make_tensor(f"model.layers.0.{part}.weight", TensorProto.FLOAT, [experts, 0, HIDDEN], [])
        for part in ("ffn_up_exps", "ffn_gate_exps", "ffn_down_exps")
    ]
    nodes = [helper.make_node("MatMul", ["x", "model.layers.0.ffn_up_exps.weight"], ["y"])]
    return onnx_model(nodes, stacked)


# -- GGUF ------------------------------------------------------------------------------------------


def gguf_empty_with_huge_dim(dims: list[int]) -> bytes:
    """A GGUF v3 file, written field by field, with one F32 tensor of zero elements."""

    def text(value: str) -> bytes:
        return struct.pack("<Q", len(value)) + value.encode()

    metadata = text("general.architecture") + struct.pack("<I", 8) + text("llama")
    info = text("blk.0.attn_q.weight") + struct.pack("<I", len(dims))
    info += b"".join(struct.pack("<Q", dim) for dim in dims) + struct.pack("<IQ", 0, 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + metadata + info
    return head + bytes(-len(head) % 32)


# -- folders ---------------------------------------------------------------------------------------

LLAMA_CONFIG = {
    "model_type": "llama",
    "hidden_size": HIDDEN,
    "intermediate_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "vocab_size": 32,
}


def write_folder(folder: Path, files: dict[str, bytes | str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


def fifo_folder(folder: Path, weight_name: str = "model.safetensors") -> Path:
    """A model folder whose weight file is a named pipe (nobody ever writes to it)."""
    write_folder(folder, {"config.json": json.dumps(LLAMA_CONFIG)})
    os.mkfifo(folder / weight_name)
    return folder


def deep_folder(folder: Path, depth: int = 1100) -> Path:
    """A model folder with one file ``depth`` directories down (made relative: paths stay short)."""
    write_folder(folder, {"config.json": json.dumps(LLAMA_CONFIG)})
    current = os.getcwd()
    try:
        os.chdir(folder)
        for _ in range(depth // 50):
            chain = os.path.join(*(["d"] * 50))
            os.makedirs(chain)
            os.chdir(chain)
        Path("leaf.txt").write_text("deep")
    finally:
        os.chdir(current)
    return folder


#: README front-matter that YAML's default constructors choke on or would turn into objects.
BAD_FRONT_MATTER = {
    "bad-date": "license: mit\ndate: 2024-13-45\n",
    "bad-timestamp": "license: mit\ncreated: 2001-12-14t21:59:43.10-99:99\n",
    "bad-float": "license: mit\nscore: !!float not-a-number\n",
    "huge-int": "license: mit\nsize: " + "9" * 5000 + "\n",
    "complex-key": "license: mit\n? [a, b]\n: value\n",
    "mapping-key": "license: mit\n? {a: 1}\n: value\n",
    "python-tag": "license: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
    "python-name": "license: !!python/name:os.system\n",
    "binary": "license: mit\nblob: !!binary '@@@'\n",
    "set": "license: mit\ntags: !!set {a, b}\n",
}


def card_folder(folder: Path, front_matter: str) -> Path:
    tensors = tiny_llama_tensors()
    from safetensors.numpy import save

    return write_folder(
        folder,
        {
            "config.json": json.dumps(LLAMA_CONFIG),
            "README.md": f"---\n{front_matter}---\n# A model\n",
            "model.safetensors": save(tensors),
        },
    )
