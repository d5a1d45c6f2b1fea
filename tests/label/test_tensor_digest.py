"""tensor_root: defined exactly, independent of sharding and container, sensitive to every byte."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modeltrace.formats import open_model
from modeltrace.label.digest import digest_model
from modeltrace.label.tensor_digest import tensor_manifest


def documented_root(tensors: dict[str, np.ndarray], dtypes: dict[str, str]) -> str:
    """The definition in docs/label.md, written out independently of the implementation."""
    digests = []
    for name in sorted(tensors, key=lambda n: n.encode("utf-8")):
        array = tensors[name]
        header = json.dumps([name, dtypes[name], list(array.shape)], separators=(",", ":"))
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        digests.append(hashlib.sha256(b"modeltrace.tensor.v1\n" + header.encode() + b"\n" + data).digest())
    return hashlib.sha256(b"".join(digests)).hexdigest()


def test_root_follows_the_documented_definition(tiny_model: Path, reference_tensors) -> None:  # type: ignore[no-untyped-def]
    dtypes = {"embed.weight": "F32", "layer.0.weight": "F16", "layer.0.bias": "I64", "head.weight": "F32"}
    assert digest_model(tiny_model).tensor_root == documented_root(reference_tensors, dtypes)


def test_one_file_and_shards_share_the_tensor_root_but_not_the_file_root(tmp_path: Path, make_model) -> None:  # type: ignore[no-untyped-def]
    single = digest_model(make_model(tmp_path / "one", shards=1))
    sharded = digest_model(make_model(tmp_path / "two", shards=2))
    assert single.tensor_root == sharded.tensor_root
    assert single.tensors is not None and sharded.tensors is not None
    assert single.tensors.tensors == sharded.tensors.tensors
    assert single.oms_root != sharded.oms_root


def test_streamed_and_raw_paths_agree(tiny_model: Path) -> None:
    with open_model(tiny_model) as source:
        assert source.weights is not None
        streamed = tensor_manifest(source.weights)
        raw = {
            name: hashlib.sha256(
                b"modeltrace.tensor.v1\n"
                + json.dumps([name, info.dtype, list(info.shape)], separators=(",", ":")).encode()
                + b"\n"
                + source.weights.raw(name)
            ).hexdigest()
            for name, info in source.weights.stored_tensors().items()
        }
    assert streamed.tensors == raw


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t["head.weight"].__setitem__((0, 0), np.nextafter(t["head.weight"][0, 0], np.float32(9))),
        lambda t: t.__setitem__("head.weight", t["head.weight"].reshape(8, 4)),
        lambda t: t.__setitem__("head.weight", t["head.weight"].astype(np.float64)),
        lambda t: t.__setitem__("lm_head.weight", t.pop("head.weight")),
    ],
    ids=["one-ulp", "reshape", "dtype", "rename"],
)
def test_any_change_to_a_tensor_changes_the_root(tmp_path: Path, change, reference_tensors) -> None:  # type: ignore[no-untyped-def]
    tensors = reference_tensors
    save_file(tensors, str(tmp_path / "a.safetensors"))
    change(tensors)
    save_file(tensors, str(tmp_path / "b.safetensors"))
    assert (
        digest_model(tmp_path / "a.safetensors").tensor_root
        != digest_model(tmp_path / "b.safetensors").tensor_root
    )


def test_fp8_block_scales_are_covered(tmp_path: Path) -> None:
    """``stored_tensors`` lists the scale tensors the reader folds away; changing one changes the root."""
    weight = np.arange(128 * 128, dtype=np.uint8).reshape(128, 128)

    def write(path: Path, scale: float) -> None:
        header = {
            "w.weight": {"dtype": "F8_E4M3", "shape": [128, 128], "data_offsets": [0, 128 * 128]},
            "w.weight_scale_inv": {
                "dtype": "F32",
                "shape": [1, 1],
                "data_offsets": [128 * 128, 128 * 128 + 4],
            },
        }
        blob = json.dumps(header).encode()
        path.write_bytes(struct.pack("<Q", len(blob)) + blob + weight.tobytes() + struct.pack("<f", scale))

    write(tmp_path / "a.safetensors", 1.0)
    write(tmp_path / "b.safetensors", 2.0)
    first = digest_model(tmp_path / "a.safetensors")
    assert first.tensors is not None and "w.weight_scale_inv" in first.tensors.tensors
    assert first.tensor_root != digest_model(tmp_path / "b.safetensors").tensor_root


def test_pytorch_checkpoint_of_the_same_weights_has_the_same_root(tmp_path: Path, reference_tensors) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("modeltrace.formats.pytorch")
    torch = pytest.importorskip("torch")
    tensors = reference_tensors
    save_file(tensors, str(tmp_path / "model.safetensors"))
    torch.save({name: torch.from_numpy(array) for name, array in tensors.items()}, tmp_path / "model.bin")
    assert (
        digest_model(tmp_path / "model.bin").tensor_root
        == digest_model(tmp_path / "model.safetensors").tensor_root
    )
