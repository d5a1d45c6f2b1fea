"""Smoke test of the moonshot benchmark's virtual checkpoint (benchmarks/virtual_checkpoint.py): its
shards are well-formed safetensors, its bytes are a pure function of seed and offset, and a child
differs from its parent only in low mantissa bits."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"

from benchmarks.virtual_checkpoint import VirtualModel  # noqa: E402

from modeltrace.formats.safetensors import SafetensorsReader  # noqa: E402


def test_virtual_shards_read_back_as_safetensors(tmp_path: Path) -> None:
    config = json.loads((BENCHMARKS / "data" / "kimi-k2-instruct.json").read_text())
    base = VirtualModel(config, 1, layers=2)
    child = VirtualModel(config, 2, parent=base, layers=2)
    name = next(iter(base.shards))
    shard = base.shards[name]
    (length,) = struct.unpack("<Q", base.read(name, 0, 8))
    header = json.loads(base.read(name, 8, 8 + length))
    assert (
        len(header) == len(shard.tensors)
        and shard.size == 8 + length + shard.tensors[-1].start + shard.tensors[-1].nbytes
    )
    # A small stand-in file holding the header and one tensor's first rows reads back through the real reader.
    weight = next(t for t in shard.tensors if t.name.endswith("q_a_proj.weight"))
    scale = next(t for t in shard.tensors if t.name.endswith("q_a_proj.weight_scale_inv"))
    path = tmp_path / name
    with open(path, "wb") as handle:
        handle.truncate(shard.size)
        for tensor, count in ((weight, 2 * weight.shape[1]), (scale, scale.nbytes)):
            handle.seek(len(shard.header) + tensor.start)
            handle.write(
                base.read(name, len(shard.header) + tensor.start, len(shard.header) + tensor.start + count)
            )
        handle.seek(0)
        handle.write(shard.header)
    rows = SafetensorsReader(path).read_rows(weight.name, [0, 1])
    assert rows.shape == (2, weight.shape[1]) and np.isfinite(rows).all() and rows.std() > 0
    # Deterministic bytes; the child flips only the 3 low (mantissa) bits of its parent's FP8 codes.
    first = len(shard.header) + weight.start
    parent_bytes = np.frombuffer(base.read(name, first, first + 4096), np.uint8)
    assert base.read(name, first, first + 4096) == parent_bytes.tobytes()
    child_bytes = np.frombuffer(child.read(name, first, first + 4096), np.uint8)
    assert ((parent_bytes ^ child_bytes) & 0xF8 == 0).all() and (parent_bytes != child_bytes).mean() > 0.3
