"""safetensors reader: single files and sharded checkpoints (``model.safetensors.index.json``).

Format (huggingface/safetensors): 8-byte little-endian header length N, N bytes of UTF-8 JSON
``{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}``, then the data
buffer; offsets are relative to the buffer. Every claim in the header is checked against the file
before any data is read. FP8 weights with block scales (``X.weight`` + ``X.weight_scale_inv``, as
DeepSeek-V3 and Kimi K2 ship) are dequantised on read; the scale tensors are folded into their
weight and listed only by ``stored_tensors``.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from modeltrace.errors import CorruptFileError, ResourceLimitError, UnsupportedFormatError
from modeltrace.formats import limits
from modeltrace.formats._index import shard_paths_from_index
from modeltrace.formats._json import parse_json_bytes
from modeltrace.formats.base import (
    DENSE_ITEMSIZE,
    TensorReader,
    check_shape,
    decode_dense,
    read_dense_rows,
)
from modeltrace.types import TensorInfo

INDEX_SUFFIX = ".safetensors.index.json"
_SCALE_SUFFIX = "_scale_inv"
_ROW_SCALE_SUFFIX = "_scale"
#: Quantisation block side of FP8 checkpoints that ship ``weight_scale_inv``.
FP8_BLOCK = 128


def _parse_header(reader: TensorReader, path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    handle = reader.open_file(path)
    if handle.size < 8:
        raise CorruptFileError(path, f"file is {handle.size} bytes, too short for a safetensors header")
    (header_length,) = struct.unpack("<Q", handle.read(0, 8))
    if header_length > limits.MAX_HEADER_BYTES:
        raise ResourceLimitError(
            path, f"header length {header_length:,} is over the {limits.MAX_HEADER_BYTES:,}-byte limit"
        )
    if 8 + header_length > handle.size:
        raise CorruptFileError(path, f"header length {header_length:,} exceeds file size {handle.size:,}")
    header = parse_json_bytes(handle.read(8, header_length), path, "safetensors header")
    if not isinstance(header, dict):
        raise CorruptFileError(path, "safetensors header is not a JSON object")
    if len(header) > limits.MAX_TENSORS:
        raise ResourceLimitError(path, f"header lists {len(header):,} tensors")
    metadata_raw = header.pop("__metadata__", None) or {}
    if not isinstance(metadata_raw, dict):
        raise CorruptFileError(path, "__metadata__ is not a JSON object")
    metadata = {str(key): str(value) for key, value in metadata_raw.items()}
    data_start = 8 + header_length
    buffer_size = handle.size - data_start
    tensors: dict[str, TensorInfo] = {}
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if not isinstance(entry, dict):
            raise CorruptFileError(path, f"entry for tensor '{name}' is not a JSON object")
        dtype = entry.get("dtype")
        if dtype not in DENSE_ITEMSIZE:
            raise CorruptFileError(path, f"tensor '{name}' has unknown dtype {dtype!r:.40}")
        shape = check_shape(path, name, entry.get("shape"))
        offsets = entry.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise CorruptFileError(path, f"tensor '{name}' has invalid data_offsets {offsets!r:.60}")
        begin, end = offsets
        if not 0 <= begin <= end <= buffer_size:
            raise CorruptFileError(
                path,
                f"tensor '{name}' data_offsets {begin:,}..{end:,} lie outside the data buffer "
                f"({buffer_size:,} bytes)",
            )
        expected = math.prod(shape) * DENSE_ITEMSIZE[dtype]
        if end - begin != expected:
            raise CorruptFileError(
                path,
                f"tensor '{name}' spans {end - begin:,} bytes but {dtype}{list(shape)} needs {expected:,}",
            )
        tensors[name] = TensorInfo(name, shape, dtype, expected, str(path), data_start + begin)
        if end > begin:
            spans.append((begin, end, name))
    spans.sort()
    for (_, first_end, first), (second_begin, _, second) in itertools.pairwise(spans):
        if second_begin < first_end:
            raise CorruptFileError(path, f"tensors '{first}' and '{second}' overlap in the data buffer")
    return tensors, metadata


def _block_size(length: int, blocks: int) -> int | None:
    """Side of the quantisation blocks that cut ``length`` into ``blocks`` pieces.

    Several sizes can tile the same length (300 rows in 3 blocks: 100..149), so the 128 that
    DeepSeek-V3 and Kimi K2 use (``weight_block_size: [128, 128]``) wins whenever it fits.
    """
    if math.ceil(length / FP8_BLOCK) == blocks:
        return FP8_BLOCK
    size = math.ceil(length / blocks)
    return size if math.ceil(length / size) == blocks else None


class SafetensorsReader(TensorReader):
    """A ``.safetensors`` file, or a sharded checkpoint given by its ``*.safetensors.index.json``."""

    format = "safetensors"

    def __init__(self, path: str | Path, shards: Sequence[Path] | None = None) -> None:
        """``path``: a .safetensors file or an index.json; ``shards``: explicit files (a folder of
        shards without an index), in which case ``path`` is only the name reported."""
        super().__init__(path)
        self._stored: dict[str, TensorInfo] = {}
        if shards is not None:
            shard_paths = list(shards)
        elif self.path.name.endswith(INDEX_SUFFIX):
            shard_paths, index_metadata = shard_paths_from_index(self.path, "safetensors index")
            self.metadata.update(index_metadata)
        else:
            shard_paths = [self.path]
        for shard in shard_paths:
            tensors, metadata = _parse_header(self, shard)
            for name in tensors:
                if name in self._stored:
                    raise CorruptFileError(
                        shard, f"tensor '{name}' also appears in {self._stored[name].file}"
                    )
            self._stored.update(tensors)
            self.metadata.update(metadata)
        self._logical = self._fold_scales()

    def _fold_scales(self) -> dict[str, TensorInfo]:
        """Hide the scale tensors that are read together with their quantised weight.

        ``X_scale_inv`` scales an FP8 ``X`` in blocks (DeepSeek-V3, Kimi K2); ``X_scale`` with one
        value per row scales an int8 ``X`` (the compressed-tensors int8 layout).
        """
        logical: dict[str, TensorInfo] = {}
        for name, info in self._stored.items():
            if name.endswith(_SCALE_SUFFIX):
                weight = self._stored.get(name[: -len(_SCALE_SUFFIX)])
                if weight is not None and weight.dtype.startswith("F8"):
                    continue
            if name.endswith(_ROW_SCALE_SUFFIX) and self._row_scale_for(name[: -len(_ROW_SCALE_SUFFIX)]):
                continue
            logical[name] = info
        return logical

    def _row_scale_for(self, weight_name: str) -> TensorInfo | None:
        """The per-row scale of an int8 matrix ``weight_name``, if the file has one that fits."""
        weight = self._stored.get(weight_name)
        scale = self._stored.get(weight_name + _ROW_SCALE_SUFFIX)
        if weight is None or scale is None or weight.dtype != "I8" or len(weight.shape) != 2:
            return None
        fits = scale.shape in ((weight.shape[0],), (weight.shape[0], 1))
        return scale if fits and scale.dtype in ("F32", "F16", "BF16") else None

    def tensors(self) -> Mapping[str, TensorInfo]:
        return self._logical

    def stored_tensors(self) -> Mapping[str, TensorInfo]:
        """Every tensor as stored, scale tensors included (for digests)."""
        return self._stored

    def raw(self, name: str) -> bytes:
        info = self._stored.get(name) or self.info(name)
        return self.open_file(info.file).read(info.offset, info.nbytes)

    def read(self, name: str) -> np.ndarray:
        info = self.info(name)
        values = decode_dense(self.raw(name), info.dtype, info.shape)
        return self._apply_block_scale(info, values, None)

    def read_rows(self, name: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        info = self.info(name)
        values = read_dense_rows(self, info, rows)
        return self._apply_block_scale(info, values, [int(row) for row in rows])

    def _apply_block_scale(self, info: TensorInfo, values: np.ndarray, rows: list[int] | None) -> np.ndarray:
        row_scale = self._row_scale_for(info.name)
        if row_scale is not None:
            wanted = list(range(info.shape[0])) if rows is None else rows
            scales = read_dense_rows(self, row_scale, wanted).reshape(len(wanted), 1)
            return values.astype(np.float32) * scales.astype(np.float32)
        scale_info = self._stored.get(info.name + _SCALE_SUFFIX)
        if scale_info is None or not info.dtype.startswith("F8"):
            return values
        if len(info.shape) != 2 or len(scale_info.shape) != 2:
            raise UnsupportedFormatError(info.file, f"block scales for non-matrix tensor '{info.name}'")
        row_count, col_count = info.shape
        scale_rows, scale_cols = scale_info.shape
        if scale_rows == 0 or scale_cols == 0:
            raise CorruptFileError(info.file, f"empty scale tensor for '{info.name}'")
        block_rows = _block_size(row_count, scale_rows)
        block_cols = _block_size(col_count, scale_cols)
        if block_rows is None or block_cols is None:
            raise CorruptFileError(
                info.file,
                f"scale tensor {list(scale_info.shape)} does not tile "
                f"weight '{info.name}' {list(info.shape)}",
            )
        wanted_rows = list(range(row_count)) if rows is None else rows
        scale_row_ids = sorted({row // block_rows for row in wanted_rows})
        scales = read_dense_rows(self, scale_info, scale_row_ids)
        position = {block: index for index, block in enumerate(scale_row_ids)}
        per_row = scales[[position[row // block_rows] for row in wanted_rows]]
        per_element = np.repeat(per_row, block_cols, axis=1)[:, :col_count]
        return (values.astype(np.float32) * per_element.astype(np.float32)).astype(np.float32)
