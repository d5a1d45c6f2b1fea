"""Defensive parser for the GGUF header: key/values and tensor infos, every claim checked.

Layout (ggml/docs/gguf.md, versions 2 and 3, little-endian): ``b"GGUF"``, u32 version, u64 tensor
count, u64 key/value count; then the key/values (u64-length string key, u32 value type, value);
then one info per tensor (string name, u32 dim count, u64 dims innermost first, u32 ggml type,
u64 offset relative to the data section); then padding to ``general.alignment`` (default 32) and
the data section.

We parse it ourselves rather than through ``gguf.GGUFReader`` because that class memory-maps the
file and builds numpy views for every header field, trusting counts and lengths it reads: a hostile
file can make it allocate or loop for as long as the counts claim. Here every count is checked
against the bytes actually left in the file before anything is allocated, and all reads go through
the byte-accounted :class:`~modeltrace.formats.base.RangeFile`.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from modeltrace.errors import CorruptFileError, ResourceLimitError, UnsupportedFormatError
from modeltrace.formats import limits
from modeltrace.formats.base import RangeFile, check_shape
from modeltrace.types import TensorInfo

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
#: Arrays longer than this are summarised in ``metadata`` (their length and element type only).
ARRAY_PREVIEW_LIMIT = 64
#: Metadata arrays kept in full whatever their length (the vocabulary, for token alignment).
KEEP_IN_FULL = frozenset({"tokenizer.ggml.tokens"})
#: Nested arrays (arrays of arrays) are legal GGUF; no real file nests deeper than this.
_MAX_ARRAY_NESTING = 4
#: Bytes fetched per header refill: large enough that a 150k-token vocabulary takes a few reads.
_CHUNK = 1 << 20

_SCALARS: dict[GGUFValueType, struct.Struct] = {
    GGUFValueType.UINT8: struct.Struct("<B"),
    GGUFValueType.INT8: struct.Struct("<b"),
    GGUFValueType.UINT16: struct.Struct("<H"),
    GGUFValueType.INT16: struct.Struct("<h"),
    GGUFValueType.UINT32: struct.Struct("<I"),
    GGUFValueType.INT32: struct.Struct("<i"),
    GGUFValueType.FLOAT32: struct.Struct("<f"),
    GGUFValueType.BOOL: struct.Struct("<?"),
    GGUFValueType.UINT64: struct.Struct("<Q"),
    GGUFValueType.INT64: struct.Struct("<q"),
    GGUFValueType.FLOAT64: struct.Struct("<d"),
}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
#: Fewest bytes one element of each value type can occupy (strings and arrays: their length field).
_MIN_SIZE = {**{kind: packer.size for kind, packer in _SCALARS.items()}, GGUFValueType.STRING: 8}
_MIN_SIZE[GGUFValueType.ARRAY] = 12
#: Smallest tensor info: empty name (8), zero dims (4), type (4), offset (8).
_MIN_TENSOR_INFO = 24


@dataclass
class GGUFHeader:
    version: int
    metadata: dict[str, Any]
    tensors: dict[str, TensorInfo]
    alignment: int
    data_start: int
    #: Full values of the ``KEEP_IN_FULL`` arrays (token strings decoded with surrogateescape so that
    #: invalid UTF-8 byte tokens survive distinct).
    kept_arrays: dict[str, list[Any]] = field(default_factory=dict)


class _Cursor:
    """Sequential reads over a RangeFile in 1 MiB windows, refusing to run past the file or the limit."""

    def __init__(self, handle: RangeFile) -> None:
        self.handle = handle
        self.position = 0
        self._window = b""
        self._window_start = 0

    def remaining(self) -> int:
        return self.handle.size - self.position

    def take(self, length: int, what: str) -> bytes:
        if length > self.remaining():
            raise CorruptFileError(
                self.handle.path,
                f"{what} at byte {self.position:,} needs {length:,} bytes but only {self.remaining():,} "
                "remain; the file is truncated or its header is corrupt",
            )
        if self.position + length > limits.MAX_HEADER_BYTES:
            raise ResourceLimitError(
                self.handle.path, f"GGUF header runs past the {limits.MAX_HEADER_BYTES:,}-byte limit"
            )
        start = self.position - self._window_start
        if start + length > len(self._window):
            size = min(max(length, _CHUNK), self.remaining())
            self._window = self.handle.read(self.position, size)
            self._window_start, start = self.position, 0
        self.position += length
        return self._window[start : start + length]

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])

    def u64(self, what: str) -> int:
        return int(_U64.unpack(self.take(8, what))[0])

    def string(self, what: str, errors: str = "replace") -> str:
        length = self.u64(f"length of {what}")
        return self.take(length, what).decode("utf-8", errors=errors)


def _value_type(cursor: _Cursor, code: int, key: str) -> GGUFValueType:
    try:
        return GGUFValueType(code)
    except ValueError:
        raise CorruptFileError(
            cursor.handle.path, f"metadata key '{key}' has unknown value type {code}"
        ) from None


def _read_array(cursor: _Cursor, key: str, keep: bool, depth: int) -> Any:
    path = cursor.handle.path
    if depth > _MAX_ARRAY_NESTING:
        raise ResourceLimitError(path, f"metadata key '{key}' nests arrays deeper than {_MAX_ARRAY_NESTING}")
    element_type = _value_type(cursor, cursor.u32(f"array type of '{key}'"), key)
    count = cursor.u64(f"array length of '{key}'")
    if count > limits.MAX_METADATA_ARRAY_LEN:
        raise ResourceLimitError(
            path,
            f"metadata array '{key}' claims {count:,} items (limit {limits.MAX_METADATA_ARRAY_LEN:,})",
        )
    if count * _MIN_SIZE[element_type] > cursor.remaining():
        raise CorruptFileError(
            path, f"metadata array '{key}' claims {count:,} items, more than the file holds"
        )
    keep_values = keep or count <= ARRAY_PREVIEW_LIMIT
    if element_type in _SCALARS:
        packer = _SCALARS[element_type]
        data = cursor.take(count * packer.size, f"array '{key}'")
        if not keep_values:
            return {"type": "array", "element_type": element_type.name, "length": count}
        return [item[0] for item in packer.iter_unpack(data)]
    values: list[Any] = []
    for index in range(count):
        if element_type == GGUFValueType.STRING:
            text = cursor.string(f"item {index} of '{key}'", errors="surrogateescape" if keep else "replace")
            if keep_values:
                values.append(text)
        else:  # an array of arrays
            item = _read_array(cursor, f"{key}[{index}]", keep_values, depth + 1)
            if keep_values:
                values.append(item)
    if not keep_values:
        return {"type": "array", "element_type": element_type.name, "length": count}
    return values


def _read_value(cursor: _Cursor, value_type: GGUFValueType, key: str, keep: frozenset[str]) -> Any:
    if value_type == GGUFValueType.STRING:
        return cursor.string(f"value of '{key}'")
    if value_type == GGUFValueType.ARRAY:
        return _read_array(cursor, key, key in keep, depth=1)
    packer = _SCALARS[value_type]
    return packer.unpack(cursor.take(packer.size, f"value of '{key}'"))[0]


def _check_version(path: Path, version: int) -> None:
    if version in (2, 3):
        return
    if version == 1:
        raise UnsupportedFormatError(
            path, "GGUF version 1 (2023 pre-release) is not supported; re-convert it"
        )
    if version & 0xFFFF == 0 and (version >> 24) in (1, 2, 3):
        raise UnsupportedFormatError(path, "big-endian GGUF is not supported; use a little-endian conversion")
    raise CorruptFileError(path, f"unknown GGUF version {version}")


def _read_metadata(
    cursor: _Cursor, count: int, keep: frozenset[str]
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    path = cursor.handle.path
    metadata: dict[str, Any] = {}
    kept: dict[str, list[Any]] = {}
    for index in range(count):
        key = cursor.string(f"key {index}")
        value_type = _value_type(cursor, cursor.u32(f"value type of '{key}'"), key)
        value = _read_value(cursor, value_type, key, keep)
        if key in metadata:
            raise CorruptFileError(path, f"metadata key '{key}' appears twice")
        if key in keep and isinstance(value, list):
            kept[key] = value
            value = {"type": "array", "element_type": "STRING", "length": len(value)}
        metadata[key] = value
    return metadata, kept


def _alignment(path: Path, metadata: dict[str, Any]) -> int:
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if (
        isinstance(alignment, bool)
        or not isinstance(alignment, int)
        or alignment <= 0
        or alignment & (alignment - 1)
        or alignment > 1 << 20
    ):
        raise CorruptFileError(path, f"general.alignment {alignment!r:.40} is not a power of two up to 1 MiB")
    return alignment


def _read_tensor_info(cursor: _Cursor) -> tuple[str, tuple[int, ...], GGMLQuantizationType, int]:
    path = cursor.handle.path
    name = cursor.string("tensor name")
    dim_count = cursor.u32(f"dimension count of '{name}'")
    if dim_count > limits.MAX_DIMS:
        raise CorruptFileError(
            path, f"tensor '{name}' claims {dim_count} dimensions (at most {limits.MAX_DIMS})"
        )
    dims = [cursor.u64(f"dimension of '{name}'") for _ in range(dim_count)]
    type_code = cursor.u32(f"type of '{name}'")
    offset = cursor.u64(f"offset of '{name}'")
    try:
        ggml_type = GGMLQuantizationType(type_code)
    except ValueError:
        raise UnsupportedFormatError(path, f"tensor '{name}' has unknown ggml type {type_code}") from None
    # GGUF lists dims innermost first (ne0 = row length); numpy order is the reverse.
    shape = check_shape(path, name, dims[::-1])
    return name, shape, ggml_type, offset


def parse_header(handle: RangeFile, keep: frozenset[str] = KEEP_IN_FULL) -> GGUFHeader:
    """Read and validate everything before the data section of a GGUF file.

    ``keep`` names the metadata arrays returned in full in ``kept_arrays`` (the probe's tokenizer
    rebuild needs ``tokenizer.ggml.merges``, ``token_type`` and ``scores`` too).
    """
    path = handle.path
    cursor = _Cursor(handle)
    if handle.size < 24 or cursor.take(4, "magic") != MAGIC:
        raise CorruptFileError(path, "not a GGUF file (missing 'GGUF' magic or shorter than a header)")
    version = cursor.u32("version")
    _check_version(path, version)
    tensor_count = cursor.u64("tensor count")
    kv_count = cursor.u64("metadata count")
    if tensor_count > limits.MAX_TENSORS:
        raise ResourceLimitError(
            path, f"header claims {tensor_count:,} tensors (limit {limits.MAX_TENSORS:,})"
        )
    if kv_count > limits.MAX_METADATA_ENTRIES:
        raise ResourceLimitError(
            path, f"header claims {kv_count:,} metadata entries (limit {limits.MAX_METADATA_ENTRIES:,})"
        )
    if tensor_count * _MIN_TENSOR_INFO + kv_count * 13 > cursor.remaining():
        raise CorruptFileError(
            path, f"header claims {tensor_count:,} tensors and {kv_count:,} keys, more than the file holds"
        )
    metadata, kept = _read_metadata(cursor, kv_count, keep)
    alignment = _alignment(path, metadata)
    entries = []
    for _ in range(tensor_count):
        entry = _read_tensor_info(cursor)
        entries.append(entry)
    data_start = -(-cursor.position // alignment) * alignment
    tensors = _tensor_infos(path, handle.size, entries, alignment, data_start)
    return GGUFHeader(version, metadata, tensors, alignment, data_start, kept)


def _tensor_infos(
    path: Path,
    file_size: int,
    entries: list[tuple[str, tuple[int, ...], GGMLQuantizationType, int]],
    alignment: int,
    data_start: int,
) -> dict[str, TensorInfo]:
    tensors: dict[str, TensorInfo] = {}
    spans: list[tuple[int, int, str]] = []
    for name, shape, ggml_type, offset in entries:
        if name in tensors:
            raise CorruptFileError(path, f"tensor '{name}' is listed twice")
        block_size, type_size = GGML_QUANT_SIZES[ggml_type]
        row_length = shape[-1] if shape else 1
        if row_length % block_size:
            raise CorruptFileError(
                path,
                f"tensor '{name}' rows of {row_length} values are not whole {ggml_type.name} "
                f"blocks of {block_size}",
            )
        element_count = 1
        for dim in shape:
            element_count *= dim
        nbytes = element_count // block_size * type_size
        if offset % alignment:
            raise CorruptFileError(
                path, f"tensor '{name}' offset {offset:,} is not a multiple of {alignment}"
            )
        start = data_start + offset
        if start + nbytes > file_size:
            raise CorruptFileError(
                path,
                f"tensor '{name}' bytes {start:,}..{start + nbytes:,} lie past the end of the file "
                f"({file_size:,} bytes); the file is truncated or its header is wrong",
            )
        tensors[name] = TensorInfo(name, shape, ggml_type.name, nbytes, str(path), start)
        if nbytes:
            spans.append((start, start + nbytes, name))
    spans.sort()
    for (_, first_end, first), (second_start, _, second) in itertools.pairwise(spans):
        if second_start < first_end:
            raise CorruptFileError(path, f"tensors '{first}' and '{second}' overlap in the data section")
    return tensors
