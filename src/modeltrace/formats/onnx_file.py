"""ONNX reader: initializers (embedded or external), dequantised int8 weights, and the graph.

Stored tensors (:meth:`ONNXReader.stored_tensors`) are the graph's initializers plus the tensors of
``Constant`` nodes (named by the node output), in their stored dtype: ``raw_data`` and the typed
fields (``float_data``, ``int32_data`` ...) both work, as does external data, which must lie inside
the model's folder and is read by byte range (``read_rows`` reads only the rows asked for).

Logical tensors (:meth:`ONNXReader.tensors`) fold quantised weights into one float32 tensor each:
see :mod:`modeltrace.formats._onnx_quant` for the patterns and the names. A folded tensor's dtype
is ``Q`` + its storage dtype (``QI8``, ``QU8``, ``QI4`` ...) and ``read`` returns
``(q - zero_point) * scale`` as float32; the integer tensor, scale and zero point it absorbed are
listed only by ``stored_tensors``. :meth:`ONNXReader.dequantization` says which pattern each uses.

The whole ``.onnx`` protobuf (at most 2 GiB by the protobuf format) is read and parsed in memory,
so embedded tensors cost no further I/O; ``bytes_read`` counts the protobuf once plus the external
ranges actually read. Hostile input: any failure of the protobuf parser becomes a CorruptFileError.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from modeltrace.errors import CorruptFileError, FormatError, ResourceLimitError, UnsupportedFormatError
from modeltrace.formats import limits
from modeltrace.formats._onnx_quant import Dequantized, find_dequantized
from modeltrace.formats.base import (
    DENSE_ITEMSIZE,
    TensorReader,
    check_shape,
    decode_dense,
    read_dense_rows,
    row_runs,
)
from modeltrace.formats.onnx_graph import Graph, MatMulWeight, Node
from modeltrace.formats.symlinks import check_symlink
from modeltrace.types import TensorInfo

#: ONNX TensorProto data types we read, in safetensors spelling (I4/U4: two values per byte).
ONNX_DTYPES: dict[int, str] = {
    1: "F32", 2: "U8", 3: "I8", 4: "U16", 5: "I16", 6: "I32", 7: "I64", 9: "BOOL", 10: "F16",
    11: "F64", 12: "U32", 13: "U64", 16: "BF16", 17: "F8_E4M3", 19: "F8_E5M2", 21: "U4", 22: "I4",
}  # fmt: skip
#: Typed protobuf field holding each dtype when ``raw_data`` is absent, and its little-endian form.
_TYPED_FIELDS: dict[str, tuple[str, str]] = {
    "F32": ("float_data", "<f4"), "F64": ("double_data", "<f8"), "I64": ("int64_data", "<i8"),
    "U32": ("uint64_data", "<u4"), "U64": ("uint64_data", "<u8"), "I32": ("int32_data", "<i4"),
    "I16": ("int32_data", "<i2"), "I8": ("int32_data", "i1"), "U16": ("int32_data", "<u2"),
    "U8": ("int32_data", "u1"), "BOOL": ("int32_data", "u1"), "F16": ("int32_data", "<u2"),
    "BF16": ("int32_data", "<u2"), "F8_E4M3": ("int32_data", "u1"), "F8_E5M2": ("int32_data", "u1"),
    "I4": ("int32_data", "u1"), "U4": ("int32_data", "u1"),  # one packed byte (two values) per entry
}  # fmt: skip
#: The protobuf format cannot hold a message over 2 GiB; larger models use external data.
MAX_PROTO_BYTES = 2**31
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


def _nbytes(dtype: str, count: int) -> int:
    return (count + 1) // 2 if dtype in ("I4", "U4") else count * DENSE_ITEMSIZE[dtype]


def _decode(buffer: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype not in ("I4", "U4"):
        return decode_dense(buffer, dtype, shape)
    packed = np.frombuffer(buffer, dtype=np.uint8)
    nibbles = np.empty(packed.size * 2, dtype=np.int8)
    nibbles[0::2] = packed & 0x0F  # ONNX packs the first element in the low nibble
    nibbles[1::2] = packed >> 4
    count = int(np.prod(shape, dtype=np.int64))
    values = nibbles[:count]
    if dtype == "I4":
        values = np.where(values > 7, values - 16, values).astype(np.int8)
    else:
        values = values.astype(np.uint8)
    return values.reshape(shape)


@dataclass(frozen=True)
class _Embedded:
    """A tensor whose bytes live inside the protobuf."""

    proto: onnx.TensorProto


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in node.attribute:
        kind = attribute.type
        if kind == onnx.AttributeProto.INT:
            values[attribute.name] = int(attribute.i)
        elif kind == onnx.AttributeProto.FLOAT:
            values[attribute.name] = float(attribute.f)
        elif kind == onnx.AttributeProto.STRING:
            values[attribute.name] = attribute.s.decode("utf-8", "replace")
        elif kind == onnx.AttributeProto.INTS:
            values[attribute.name] = [int(v) for v in attribute.ints]
        elif kind == onnx.AttributeProto.FLOATS:
            values[attribute.name] = [float(v) for v in attribute.floats]
    return values


class ONNXReader(TensorReader):
    """One ``.onnx`` file and the external data files it names."""

    format = "onnx"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        try:
            self._folder = self.path.parent.resolve()
        except (OSError, RuntimeError) as error:
            raise CorruptFileError(self.path, f"cannot resolve the model folder ({error})") from error
        model = self._load()
        try:
            self._build(model)
        except FormatError:
            raise
        except (UnicodeDecodeError, ValueError, TypeError, OverflowError) as error:
            # A protobuf that parses can still hold invalid UTF-8 names or out-of-range fields.
            raise CorruptFileError(
                self.path, f"inconsistent ONNX model ({type(error).__name__}: {error})"
            ) from error

    # -- loading ---------------------------------------------------------------------------------

    def _load(self) -> onnx.ModelProto:
        handle = self.open_file(self.path)
        if handle.size > MAX_PROTO_BYTES:
            raise ResourceLimitError(
                self.path, f"file is {handle.size:,} bytes; an ONNX protobuf cannot exceed 2 GiB"
            )
        model = onnx.ModelProto()
        try:
            model.ParseFromString(handle.read(0, handle.size))
        except Exception as error:  # the protobuf runtime raises several types on hostile bytes
            raise CorruptFileError(
                self.path, f"not a valid ONNX protobuf ({type(error).__name__}: {error})"
            ) from error
        if not model.HasField("graph"):
            raise CorruptFileError(self.path, "the protobuf has no graph; it is not an ONNX model")
        return model

    def _build(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        if len(graph.initializer) + len(graph.node) > limits.MAX_TENSORS:
            raise ResourceLimitError(
                self.path, f"graph holds {len(graph.initializer) + len(graph.node):,} items"
            )
        self.metadata.update(
            {
                "onnx.ir_version": int(model.ir_version),
                "onnx.producer_name": model.producer_name,
                "onnx.producer_version": model.producer_version,
                "onnx.domain": model.domain,
                "onnx.model_version": int(model.model_version),
                "onnx.graph_name": graph.name,
                "onnx.opset": {entry.domain or "ai.onnx": int(entry.version) for entry in model.opset_import},
            }
        )
        self.metadata.update({prop.key: prop.value for prop in model.metadata_props})
        self._stored: dict[str, TensorInfo] = {}
        self._sources: dict[str, _Embedded | None] = {}  # None: external, read by range
        skipped: list[str] = []
        for proto in graph.initializer:
            self._add_stored(proto.name, proto, skipped)
        nodes = []
        for node in graph.node:
            nodes.append(
                Node(
                    node.op_type,
                    node.name,
                    tuple(node.input),
                    tuple(node.output),
                    node.domain,
                    _attributes(node),
                )
            )
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                for attribute in node.attribute:
                    if attribute.name == "value" and attribute.type == onnx.AttributeProto.TENSOR:
                        self._add_stored(node.output[0], attribute.t, skipped)
        if skipped:
            self.metadata["onnx.unreadable_initializers"] = skipped[:64]
        if len(graph.sparse_initializer):
            self.metadata["onnx.sparse_initializers"] = len(graph.sparse_initializer)
        plain = Graph(
            nodes=tuple(nodes),
            inputs=tuple(value.name for value in graph.input),
            outputs=tuple(value.name for value in graph.output),
            tensors=frozenset(self._stored),
        )
        self._dequantized, absorbed = find_dequantized(plain, self._stored)
        self._logical = {name: info for name, info in self._stored.items() if name not in absorbed}
        for name, found in self._dequantized.items():
            quantized = self._stored[found.quantized]
            self._logical[name] = TensorInfo(
                name, quantized.shape, "Q" + quantized.dtype, quantized.nbytes, quantized.file, -1
            )
        aliases = {found.quantized: name for name, found in self._dequantized.items()}
        self._graph = replace(plain, tensors=frozenset(self._logical), aliases=aliases)
        self._scale_cache: dict[str, np.ndarray] = {}

    def _add_stored(self, name: str, proto: onnx.TensorProto, skipped: list[str]) -> None:
        if not name:
            raise CorruptFileError(self.path, "an initializer has no name")
        if name in self._stored or name in skipped:
            raise CorruptFileError(self.path, f"initializer '{name}' is defined twice")
        dtype = ONNX_DTYPES.get(proto.data_type)
        if dtype is None:
            skipped.append(name)  # strings, complex numbers, exotic floats: not weights we fingerprint
            return
        if proto.HasField("segment"):
            raise UnsupportedFormatError(self.path, f"initializer '{name}' is split into segments")
        shape = check_shape(self.path, name, list(proto.dims))
        count = 1
        for dim in shape:
            count *= dim
        nbytes = _nbytes(dtype, count)
        if proto.data_location == _EXTERNAL:
            file, offset = self._external_range(name, proto, nbytes)
            self._stored[name] = TensorInfo(name, shape, dtype, nbytes, str(file), offset)
            self._sources[name] = None
            return
        if proto.HasField("raw_data"):
            if len(proto.raw_data) != nbytes:
                raise CorruptFileError(
                    self.path,
                    f"initializer '{name}' holds {len(proto.raw_data):,} bytes but {dtype}{list(shape)} "
                    f"needs {nbytes:,}",
                )
        else:
            field_name = _TYPED_FIELDS[dtype][0]
            held = len(getattr(proto, field_name))
            needed = nbytes if dtype in ("I4", "U4") else count
            if held != needed:
                raise CorruptFileError(
                    self.path,
                    f"initializer '{name}' holds {held:,} values in {field_name}, shape needs {needed:,}",
                )
        self._stored[name] = TensorInfo(name, shape, dtype, nbytes, str(self.path), -1)
        self._sources[name] = _Embedded(proto)

    def _external_range(self, name: str, proto: onnx.TensorProto, nbytes: int) -> tuple[Path, int]:
        entries = {entry.key: entry.value for entry in proto.external_data}
        location = entries.get("location", "")
        if not location or "\0" in location or os.path.isabs(location) or ".." in Path(location).parts:
            raise CorruptFileError(
                self.path,
                f"initializer '{name}' names external data {location!r:.80} outside the model folder",
            )
        check_symlink(self._folder / location, self._folder)
        try:
            target = (self._folder / location).resolve()
            offset = int(entries.get("offset", "0"))
            length = int(entries.get("length", str(nbytes)))
        except (OSError, RuntimeError, ValueError) as error:
            raise CorruptFileError(
                self.path, f"initializer '{name}' has bad external data ({error})"
            ) from error
        if not target.is_file():
            raise CorruptFileError(
                self.path,
                f"external data file {location!r:.80} for '{name}' is missing or not a file",
            )
        if length != nbytes or offset < 0 or offset + nbytes > target.stat().st_size:
            raise CorruptFileError(
                self.path,
                f"initializer '{name}' external range {offset:,}+{length:,} does not hold its {nbytes:,} "
                f"bytes inside '{location}' ({target.stat().st_size:,} bytes)",
            )
        return target, offset

    # -- stored tensors --------------------------------------------------------------------------

    def _stored_info(self, name: str) -> TensorInfo:
        info = self._stored.get(name)
        if info is None:
            return self.info(name)  # raises TensorNotFoundError
        return info

    def _stored_bytes(self, info: TensorInfo) -> bytes:
        source = self._sources[info.name]
        if source is None:
            return self.open_file(info.file).read(info.offset, info.nbytes)
        proto = source.proto
        if proto.HasField("raw_data"):
            return bytes(proto.raw_data)
        field_name, little_endian = _TYPED_FIELDS[info.dtype]
        return np.asarray(getattr(proto, field_name)).astype(little_endian).tobytes()

    def _stored_rows(self, info: TensorInfo, rows: list[int] | None) -> np.ndarray:
        if rows is None:
            return _decode(self._stored_bytes(info), info.dtype, info.shape)
        if self._sources[info.name] is None and info.dtype in DENSE_ITEMSIZE:
            return read_dense_rows(self, info, rows)
        if not info.shape:
            raise CorruptFileError(info.file, f"tensor '{info.name}' is a scalar; it has no rows")
        row_runs(rows, info.shape[0], info.file, info.name)  # validates the indices
        return _decode(self._stored_bytes(info), info.dtype, info.shape)[rows]

    # -- TensorReader ----------------------------------------------------------------------------

    def tensors(self) -> Mapping[str, TensorInfo]:
        return self._logical

    def stored_tensors(self) -> Mapping[str, TensorInfo]:
        return self._stored

    def raw(self, name: str) -> bytes:
        """Stored bytes; for a folded tensor, those of its quantised integer tensor. Typed-field
        tensors give the little-endian bytes ``raw_data`` would hold (protobuf varints are not
        a stable encoding)."""
        found = self._dequantized.get(name)
        return self._stored_bytes(self._stored_info(found.quantized if found else name))

    def read(self, name: str) -> np.ndarray:
        found = self._dequantized.get(name)
        if found is None:
            return self._stored_rows(self._stored_info(name), None)
        return self._dequantize(found, None)

    def read_rows(self, name: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        wanted = [int(row) for row in rows]
        found = self._dequantized.get(name)
        if found is None:
            return self._stored_rows(self._stored_info(name), wanted)
        return self._dequantize(found, wanted)

    # -- dequantisation --------------------------------------------------------------------------

    def _small(self, name: str) -> np.ndarray:
        """A scale or zero point, decoded once (they are small next to their weight)."""
        if name not in self._scale_cache:
            self._scale_cache[name] = self._stored_rows(self._stored[name], None).astype(np.float32)
        return self._scale_cache[name]

    def _dequantize(self, found: Dequantized, rows: list[int] | None) -> np.ndarray:
        info = self._stored[found.quantized]
        if rows is not None and not info.shape:
            raise CorruptFileError(info.file, f"tensor '{found.name}' is a scalar; it has no rows")
        values = self._stored_rows(info, rows).astype(np.float32)
        scale = _aligned(self._small(found.scale), found, info.shape, rows)
        # A damaged scale (inf, NaN) gives inf/NaN weights, which is what the file says: no warnings.
        with np.errstate(over="ignore", invalid="ignore"):
            if found.zero_point is not None:
                values -= _aligned(self._small(found.zero_point), found, info.shape, rows)
            return np.asarray(values * scale, dtype=np.float32)

    def dequantization(self) -> dict[str, Dequantized]:
        """How each folded logical tensor is computed (pattern, quantised tensor, scale, zero point)."""
        return dict(self._dequantized)

    # -- graph -----------------------------------------------------------------------------------

    def graph(self) -> Graph:
        """The graph's nodes, with ``consumers`` / ``producer`` / ``matmul_weights`` helpers."""
        return self._graph

    def matmul_weights(self) -> list[MatMulWeight]:
        """Shortcut for ``graph().matmul_weights()``."""
        return self._graph.matmul_weights()


def _aligned(
    values: np.ndarray, found: Dequantized, shape: tuple[int, ...], rows: list[int] | None
) -> np.ndarray:
    """Reshape a scale / zero point so it broadcasts against the (row-selected) quantised tensor."""
    rank = len(shape)
    if found.axis is None:
        values = values.reshape((1,) * (rank - values.ndim) + values.shape)
        return values[rows] if rows is not None and values.shape[0] != 1 else values
    axis = found.axis % rank
    if found.block_size:
        wanted = np.arange(shape[axis]) if rows is None or axis else np.asarray(rows, dtype=np.int64)
        values = np.take(values, wanted // found.block_size, axis=axis)
        return values[rows] if rows is not None and axis else values
    values = values.reshape([-1 if dim == axis else 1 for dim in range(rank)])
    return values[rows] if rows is not None and axis == 0 else values
