"""Hostile input, every format: mutated files may only fail with FormatError / TensorNotFoundError.

Small valid files are built with each format's own writer (safetensors, torch.save in both
layouts, gguf.GGUFWriter, onnx.helper), then hypothesis flips, cuts, inserts, deletes and
overwrites bytes, with extra weight on header length and count fields. Every tensor of whatever
still opens is read in full, as raw bytes and by rows. Anything other than a modeltrace
FormatError or TensorNotFoundError is a bug, as is an example that is slow (deadline) or that
allocates far more than the file could justify (tracemalloc peak, numpy arrays included).

The GGUF and ONNX cases skip until ``modeltrace.formats.gguf_file`` / ``onnx_file`` exist.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import os
import pickle
import struct
import tempfile
import tracemalloc
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeltrace.errors import FormatError, ResourceLimitError, TensorNotFoundError, UnsafePickleError
from modeltrace.formats import open_model

#: Peak Python + numpy allocation allowed while opening and reading one mutated file of a few KB.
MEMORY_BUDGET = 32 * 1024**2
FUZZ_SETTINGS = settings(
    max_examples=60,
    # Generous for few-KB files on a loaded 2-core CI box; a hang or quadratic blow-up still fails.
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow],
)
#: Integers that break length and count fields in interesting ways.
INTERESTING = [
    0,
    1,
    0x7F,
    0xFF,
    0xFFFF,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**40,
    2**62,
    2**63 - 1,
    2**64 - 1,
]


# -- seed files ------------------------------------------------------------------------------------


def _safetensors_seed() -> bytes:
    from safetensors.numpy import save

    tensors = {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4),
        "h": np.arange(6, dtype=np.float16).reshape(2, 3),
        "i": np.arange(4, dtype=np.int8),
    }
    return save(tensors, metadata={"format": "pt"})


def _torch_seed(layout: str) -> bytes:
    import torch

    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    weights = {
        "w": base,
        "t": base.t(),
        "b": torch.ones(2, 3, dtype=torch.bfloat16),
        "n": {"i": torch.arange(3)},
    }
    buffer = io.BytesIO()
    torch.save(weights, buffer, _use_new_zipfile_serialization=layout == "zip")
    return buffer.getvalue()


def _gguf_seed() -> bytes:
    import gguf

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "seed.gguf"
        writer = gguf.GGUFWriter(path, "llama")
        writer.add_name("fuzz")
        writer.add_context_length(16)
        writer.add_tensor("w", np.arange(12, dtype=np.float32).reshape(3, 4))
        writer.add_tensor("h", np.arange(8, dtype=np.float16).reshape(2, 4))
        quantised = gguf.quants.quantize(
            np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32), gguf.GGMLQuantizationType.Q8_0
        )
        writer.add_tensor("q", quantised, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


def _onnx_seed() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    initializers = [
        numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w"),
        numpy_helper.from_array(np.arange(4, dtype=np.int64), "b"),
        numpy_helper.from_array(np.arange(6, dtype=np.float16).reshape(2, 3), "h"),
    ]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "fuzz",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializers,
    )
    return helper.make_model(graph).SerializeToString()


def _data_pkl_seed() -> bytes:
    """The pickle inside the zip checkpoint: mutated alone, so the zip around it stays valid."""
    with zipfile.ZipFile(io.BytesIO(_seed("pytorch-zip"))) as archive:
        return archive.read(_data_pkl_name())


def _data_pkl_name() -> str:
    with zipfile.ZipFile(io.BytesIO(_seed("pytorch-zip"))) as archive:
        return next(name for name in archive.namelist() if name.endswith("/data.pkl"))


def _wrap_data_pkl(data_pkl: bytes) -> bytes:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(_seed("pytorch-zip"))) as original,
        zipfile.ZipFile(buffer, "w") as archive,
    ):
        for name in original.namelist():
            archive.writestr(name, data_pkl if name == _data_pkl_name() else original.read(name))
    return buffer.getvalue()


#: format -> (file name, seed builder, reader module that must exist, how to turn the mutated seed
#: into a file)
SEEDS: dict[str, tuple[str, Callable[[], bytes], str, Callable[[bytes], bytes]]] = {
    "safetensors": ("model.safetensors", _safetensors_seed, "modeltrace.formats.safetensors", bytes),
    "pytorch-zip": (
        "pytorch_model.bin",
        functools.partial(_torch_seed, "zip"),
        "modeltrace.formats.pytorch",
        bytes,
    ),
    "pytorch-data.pkl": ("model.pt", _data_pkl_seed, "modeltrace.formats.pytorch", _wrap_data_pkl),
    "pytorch-legacy": (
        "model.pt",
        functools.partial(_torch_seed, "legacy"),
        "modeltrace.formats.pytorch",
        bytes,
    ),
    "gguf": ("model.gguf", _gguf_seed, "modeltrace.formats.gguf_file", bytes),
    "onnx": ("model.onnx", _onnx_seed, "modeltrace.formats.onnx_file", bytes),
}


@functools.cache
def _seed(kind: str) -> bytes:
    return SEEDS[kind][1]()


def _require_reader(kind: str) -> None:
    module = SEEDS[kind][2]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not in this branch yet")


# -- mutations -------------------------------------------------------------------------------------

# Headers live at the start of most formats: a third of the positions fall in the first 64 bytes.
_positions = st.one_of(st.integers(0, 63), st.integers(0, 1 << 20))
_mutation = st.one_of(
    st.tuples(st.just("flip"), _positions, st.integers(1, 255)),
    st.tuples(st.just("truncate"), _positions),
    st.tuples(st.just("insert"), _positions, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), _positions, st.integers(1, 16)),
    st.tuples(st.just("integer"), _positions, st.sampled_from(INTERESTING), st.sampled_from([1, 2, 4, 8])),
)


def _overwrite(data: bytes, position: int, value: int, width: int) -> bytes:
    field = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    position = min(position, max(len(data) - width, 0))
    return data[:position] + field + data[position + width :]


def _mutate(data: bytes, mutation: tuple) -> bytes:  # type: ignore[type-arg]
    kind, position = mutation[0], mutation[1] % (len(data) + 1)
    if kind == "flip" and position < len(data):
        return data[:position] + bytes([data[position] ^ mutation[2]]) + data[position + 1 :]
    if kind == "truncate":
        return data[:position]
    if kind == "insert":
        return data[:position] + mutation[2] + data[position:]
    if kind == "delete":
        return data[:position] + data[position + mutation[2] :]
    if kind == "integer":
        return _overwrite(data, position, mutation[2], mutation[3])
    return data


def _header_fields(kind: str, data: bytes) -> list[tuple[int, int]]:
    """(offset, width) of the length and count fields each format trusts first."""
    if kind == "safetensors":
        return [(0, 8)]
    if kind == "gguf":
        return [(4, 4), (8, 8), (16, 8), (24, 8)]  # version, tensor count, kv count, first key length
    if kind == "pytorch-zip":
        end = data.rfind(b"PK\x05\x06")
        central = data.find(b"PK\x01\x02")
        return [
            (18, 4), (22, 4), (26, 2), (28, 2),  # first local header: sizes, name and extra lengths
            (central + 20, 4), (central + 24, 4), (central + 28, 2), (central + 42, 4),
            (end + 10, 2), (end + 12, 4), (end + 16, 4),  # end of central directory
        ]  # fmt: skip
    if kind == "pytorch-data.pkl":
        return [(2 + 5 * n, 4) for n in range(12)]  # BININT/BINUNICODE arguments near the start
    if kind == "pytorch-legacy":
        return [(len(data) - 8 - 4 * n, 8) for n in (0, 3, 6)] + [(2, 4), (3, 8)]
    return [(0, 1), (1, 4), (2, 8)]  # onnx: protobuf tags and varint lengths up front


# -- the property ----------------------------------------------------------------------------------


def _open_and_read_everything(path: Path) -> None:
    """Do what a fingerprint or digest would do with the file; let only modeltrace errors out."""
    try:
        with open_model(path) as source:
            reader = source.weights
            if reader is None:
                return
            reader.declared()
            for name in list(reader.stored_tensors()):
                with contextlib.suppress(FormatError, TensorNotFoundError):
                    reader.raw(name)
            for name, info in list(reader.tensors().items()):
                try:
                    reader.read(name)
                    if info.shape and info.shape[0]:
                        reader.read_rows(name, [info.shape[0] - 1, 0])
                except (FormatError, TensorNotFoundError):
                    pass
    except (FormatError, TensorNotFoundError):
        pass


def _check(kind: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / SEEDS[kind][0]
        path.write_bytes(SEEDS[kind][3](data))
        tracemalloc.start()
        try:
            _open_and_read_everything(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < MEMORY_BUDGET, f"reading a {len(data):,}-byte file allocated {peak:,} bytes"


@pytest.mark.parametrize("kind", list(SEEDS))
def test_seed_files_read_cleanly(kind: str) -> None:
    _require_reader(kind)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / SEEDS[kind][0]
        path.write_bytes(SEEDS[kind][3](_seed(kind)))
        with open_model(path) as source:
            assert source.weights is not None
            assert len(source.weights.tensors()) >= 3
            for name in source.weights.tensors():
                source.weights.read(name)


@pytest.mark.parametrize("kind", list(SEEDS))
@FUZZ_SETTINGS
@given(mutations=st.lists(_mutation, min_size=1, max_size=4))
def test_mutated_files_fail_only_with_format_errors(kind: str, mutations: list[tuple]) -> None:  # type: ignore[type-arg]
    _require_reader(kind)
    data = _seed(kind)
    for mutation in mutations:
        data = _mutate(data, mutation)
    _check(kind, data)


@pytest.mark.parametrize("kind", list(SEEDS))
@settings(FUZZ_SETTINGS, max_examples=40)
@given(field=st.integers(0, 63), value=st.sampled_from(INTERESTING), delta=st.integers(-2, 2))
def test_overwritten_header_fields_fail_only_with_format_errors(
    kind: str, field: int, value: int, delta: int
) -> None:
    _require_reader(kind)
    data = _seed(kind)
    fields = _header_fields(kind, data)
    offset, width = fields[field % len(fields)]
    _check(kind, _overwrite(data, offset, max(value + delta, 0), width))


# -- named hostile inputs --------------------------------------------------------------------------


def _zip_bomb(folder: Path) -> Path:
    path = folder / "bomb.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02N" + b"N" * 20_000_000 + b".", zipfile.ZIP_DEFLATED)
    return path


class _RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _pickle_with_code(folder: Path) -> Path:
    path = folder / "pytorch_model.bin"
    path.write_bytes(pickle.dumps({"w": _RunsShell(folder / "pwned")}, protocol=2))
    return path


def _symlink_loop(folder: Path) -> Path:
    (folder / "a.safetensors").symlink_to(folder / "b.safetensors")
    (folder / "b.safetensors").symlink_to(folder / "a.safetensors")
    return folder / "a.safetensors"


def _folder_with_looping_weights(folder: Path) -> Path:
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").symlink_to(folder / "model.safetensors")
    return folder


def _deep_json_header(folder: Path) -> Path:
    header = b"[" * 200_000 + b"]" * 200_000
    path = folder / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


def _deep_config(folder: Path) -> Path:
    (folder / "config.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    return folder


def _deep_index(folder: Path) -> Path:
    (folder / "pytorch_model.bin.index.json").write_text('{"weight_map":' + "[" * 50_000 + "]" * 50_000 + "}")
    return folder / "pytorch_model.bin.index.json"


def _huge_safetensors_shape(folder: Path) -> Path:
    header = b'{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}}'
    path = folder / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    return path


def _huge_pickle_shape(folder: Path) -> Path:
    path = folder / "huge.pt"
    size = b"(" + b"J\xff\xff\xff\x7f" * 3 + b"t"
    data_pkl = (
        b"\x80\x02}(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
        b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00" + size
        + b"(K\x01K\x01K\x01t\x89}tRu."
    )  # fmt: skip
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/data/0", bytes(16))
    return path


_HUGE_INTEGER = "9" * 5000  # int() refuses more than 4,300 digits with a bare ValueError


def _huge_integer_header(folder: Path) -> Path:
    header = ('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, ' + _HUGE_INTEGER + "]}}").encode()
    path = folder / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(4))
    return path


def _huge_integer_index(folder: Path) -> Path:
    index = '{"metadata": {"total_size": ' + _HUGE_INTEGER + '}, "weight_map": {"w": "a.safetensors"}}'
    (folder / "model.safetensors.index.json").write_text(index)
    return folder


def _huge_integer_config(folder: Path) -> Path:
    (folder / "config.json").write_text('{"model_type": "llama", "hidden_size": ' + _HUGE_INTEGER + "}")
    return folder


def _huge_float_config(folder: Path) -> Path:
    (folder / "config.json").write_text('{"rms_norm_eps": 0.' + "1" * 5000 + "}")
    return folder


HOSTILE: dict[str, tuple[Callable[[Path], Path], type[Exception]]] = {
    "zip bomb": (_zip_bomb, ResourceLimitError),
    "pickle with code": (_pickle_with_code, UnsafePickleError),
    "symlink loop": (_symlink_loop, FormatError),
    "folder whose weights loop": (_folder_with_looping_weights, FormatError),
    "deep JSON header": (_deep_json_header, ResourceLimitError),
    "deep config.json": (_deep_config, ResourceLimitError),
    "deep index.json": (_deep_index, ResourceLimitError),
    "huge safetensors shape": (_huge_safetensors_shape, ResourceLimitError),
    "huge pickle shape": (_huge_pickle_shape, ResourceLimitError),
    "5,000-digit integer in a safetensors header": (_huge_integer_header, FormatError),
    "5,000-digit integer in an index": (_huge_integer_index, FormatError),
    "5,000-digit integer in config.json": (_huge_integer_config, FormatError),
    "5,000-digit float in config.json": (_huge_float_config, FormatError),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_named_hostile_inputs_fail_cleanly(tmp_path: Path, case: str) -> None:
    build, expected = HOSTILE[case]
    path = build(tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(expected):
            _open_and_read_everything_strict(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BUDGET, f"{case}: allocated {peak:,} bytes"
    assert not (tmp_path / "pwned").exists()


def _open_and_read_everything_strict(path: Path) -> None:
    with open_model(path) as source:
        if source.weights is not None:
            for name in source.weights.tensors():
                source.weights.read(name)
