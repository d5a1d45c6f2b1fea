"""A MoE model converted to GGUF (routed experts stacked in ``blk.N.ffn_{gate,up,down}_exps``)
compares expert by expert, as its Hugging Face original does.

The GGUF is written by the zoo's exporter, which does what llama.cpp's converter does: experts
stacked along a leading axis, router as ``ffn_gate_inp``, q/k rows permuted for rotary, Q8_0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modeltrace import api
from modeltrace.fingerprint.build import Budget, build_fingerprint
from modeltrace.fingerprint.roles import SHARED_EXPERT, assign_roles
from modeltrace.formats import open_model
from modeltrace.types import TensorInfo
from modeltrace.zoo.export_gguf import write_gguf
from modeltrace.zoo.files import read_hf_folder


@pytest.fixture(scope="module")
def gguf_moe(quick_zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    names = {model["name"] for model in json.loads((quick_zoo / "zoo.json").read_text())["models"]}
    assert {"llama-s0.upcycled-moe", "llama-s0", "llama-s1"} <= names
    params, config, vocab = read_hf_folder(quick_zoo / "models" / "llama-s0.upcycled-moe")
    assert config.num_experts == 4
    path = tmp_path_factory.mktemp("gguf-moe") / "upcycled-moe.Q8_0.gguf"
    return write_gguf(path, "upcycled-moe", params, config, vocab, "Q8_0")


def test_stacked_experts_become_one_block_per_expert_reading_only_sampled_rows(gguf_moe: Path) -> None:
    with open_model(gguf_moe) as source:
        info = source.weights.info("blk.0.ffn_up_exps.weight")
        sampled = build_fingerprint(source)
    with open_model(gguf_moe) as source:
        whole = build_fingerprint(source, Budget(read_whole=True))
    assert info.shape == (4, 192, 64)  # [n_expert, units, hidden] in numpy order
    labels = [block.label for block in sampled.blocks]
    assert labels == [f"{layer}.e{expert}" for layer in range(4) for expert in range(4)]
    assert all(block.gate is not None and block.units == 192 for block in sampled.blocks)
    assert all(len(block.unit_rows) == 128 for block in sampled.blocks)
    # Same units either way; the sampled build skips exactly the 64 unsampled rows of up and gate
    # in each of the 16 experts (reading whole, each expert's own 192 rows, not its neighbours').
    assert [block.digest for block in sampled.blocks] == [block.digest for block in whole.blocks]
    row_bytes = info.nbytes // (4 * 192)
    assert whole.bytes_read - sampled.bytes_read == 16 * 2 * 64 * row_bytes


def test_gguf_moe_is_related_to_its_base_and_not_to_an_independent_model(
    gguf_moe: Path, quick_zoo: Path
) -> None:
    models = quick_zoo / "models"
    base = api.compare(str(gguf_moe), str(models / "llama-s0"))
    assert base.verdict == "related"
    assert base.relation == "upcycled to mixture-of-experts"
    independent = api.compare(str(gguf_moe), str(models / "llama-s1"))
    assert independent.verdict == "unrelated"


def _info(name: str, *shape: int) -> TensorInfo:
    return TensorInfo(name, shape, "F32", 4 * int(np.prod(shape)), "m.gguf", 0)


def test_roles_split_stacked_experts_and_keep_the_shared_expert() -> None:
    tensors = {
        name: _info(name, *shape)
        for name, shape in {
            "token_embd.weight": (50, 8),
            "blk.0.ffn_norm.weight": (8,),
            "blk.0.ffn_gate_inp.weight": (3, 8),
            "blk.0.ffn_up_exps.weight": (3, 6, 8),
            "blk.0.ffn_gate_exps.weight": (3, 6, 8),
            "blk.0.ffn_down_exps.weight": (3, 8, 6),
            "blk.0.ffn_up_shexp.weight": (10, 8),
            "blk.0.ffn_gate_shexp.weight": (10, 8),
            "blk.1.ffn_up_exps.weight": (3, 8, 6),  # not [n_expert, units, hidden]: not read as experts
        }.items()
    }
    roles = assign_roles(tensors, vocab_size=50, hidden_size=None, format="gguf")
    found = sorted((b.layer, b.expert, b.up, b.gate, b.units, b.stacked, b.norm) for b in roles.blocks)
    norm = "blk.0.ffn_norm.weight"
    assert found == [
        (0, SHARED_EXPERT, "blk.0.ffn_up_shexp.weight", "blk.0.ffn_gate_shexp.weight", 10, False, norm),
        *[(0, e, "blk.0.ffn_up_exps.weight", "blk.0.ffn_gate_exps.weight", 6, True, norm) for e in range(3)],
    ]


def test_inspect_counts_stacked_gguf_experts_like_the_hugging_face_original(
    gguf_moe: Path, quick_zoo: Path
) -> None:
    original = api.inspect(quick_zoo / "models" / "llama-s0.upcycled-moe")
    converted = api.inspect(gguf_moe)
    for key in ("total_params", "active_params", "embedding_params", "layers"):
        assert converted[key] == original[key], key
    assert converted["experts"] == original["experts"]
    assert original["experts"]["routed"] == 4 and original["active_params"] < original["total_params"]
