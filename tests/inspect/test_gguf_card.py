"""A GGUF written by the demo zoo, read back with the ``gguf`` package's own reader, gives the same card.

This checks the GGUF side of ``card_from_tensors`` (``{arch}.*`` metadata keys, ``blk.N`` names,
ggml axis order) without depending on modeltrace's GGUF reader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modeltrace.inspect.card import card_from_config, card_from_tensors
from modeltrace.inspect.layouts import config_tensor_shapes
from modeltrace.types import TensorInfo
from modeltrace.zoo.demo import TINY_LLAMA, random_weights, write_tiny_llama_gguf


def test_gguf_metadata_and_tensors_give_the_config_card(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "tiny.gguf"
    write_tiny_llama_gguf(path, random_weights(TINY_LLAMA, 1, lambda config: config_tensor_shapes(config)[0]))
    reader = gguf.GGUFReader(path)
    metadata = {name: field.contents() for name, field in reader.fields.items()}
    tensors = [
        TensorInfo(t.name, tuple(int(d) for d in t.shape), t.tensor_type.name, int(t.n_bytes), str(path))
        for t in reader.tensors
    ]
    card = card_from_tensors(tensors, None, metadata)
    expected = card_from_config(TINY_LLAMA)
    assert card.total_params == expected.total_params
    assert card.family == "llama"
    for field in ("layers", "hidden_size", "attention_heads", "kv_heads", "vocab_size", "context_length"):
        assert getattr(card.dims, field) == getattr(expected.dims, field), field
    assert card.embedding_params == TINY_LLAMA["vocab_size"] * TINY_LLAMA["hidden_size"]
