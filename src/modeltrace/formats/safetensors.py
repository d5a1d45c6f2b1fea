"""safetensors reader: single files and sharded checkpoints (``model.safetensors.index.json``).

Format (huggingface/safetensors): 8-byte little-endian header length N, N bytes of UTF-8 JSON
``{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}``, then the data
buffer; offsets are relative to the buffer. Every claim in the header is checked against the file
before any data is read. Quantised weights (FP8 block scales as DeepSeek-V3 and Kimi K2 ship,
compressed-tensors, GPTQ, AWQ, bitsandbytes, MXFP4: :mod:`modeltrace.formats.quant`) are listed as
one logical tensor of the unpacked shape and dequantised on read, rows only for ``read_rows``; their
parts (codes, scales, zero points) are listed only by ``stored_tensors``.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from modeltrace.errors import CorruptFileError, ResourceLimitError, TensorNotFoundError
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
from modeltrace.formats.quant import QuantisedWeight, scheme_summary
from modeltrace.formats.quant.fold import fold_quantised
from modeltrace.types import TensorInfo

INDEX_SUFFIX = ".safetensors.index.json"


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
        self._config: Mapping[str, Any] | None = None
        self._folded: tuple[dict[str, QuantisedWeight], dict[str, TensorInfo]] | None = None

    def use_config(self, config: Mapping[str, Any] | None) -> None:
        """Fold quantised weights (codes + scales + zero points ...) into logical tensors; config.json's
        ``quantization_config`` settles what the tensors leave open (GPTQ's zero format, bit widths)."""
        self._config = config
        self._folded = None  # folded on first use: open_model passes the config right after opening

    def _fold(self) -> tuple[dict[str, QuantisedWeight], dict[str, TensorInfo]]:
        if self._folded is None:
            self._folded = fold_quantised(self._stored, _StoredAccess(self), self._config)
        return self._folded

    @property
    def _quant(self) -> dict[str, QuantisedWeight]:
        return self._fold()[0]

    @property
    def _logical(self) -> dict[str, TensorInfo]:
        return self._fold()[1]

    def quantization_summary(self) -> dict[str, Any] | None:
        """The quantisation method and encodings found (and config.json's declaration), or None."""
        return scheme_summary(self._quant, self._config)

    @property
    def quantised(self) -> Mapping[str, QuantisedWeight]:
        """The quantised weights by logical name (empty for a full-precision checkpoint)."""
        return self._quant

    def tensors(self) -> Mapping[str, TensorInfo]:
        return self._logical

    def stored_tensors(self) -> Mapping[str, TensorInfo]:
        """Every tensor as stored, scale tensors included (for digests)."""
        return self._stored

    def raw(self, name: str) -> bytes:
        info = self._stored.get(name)
        if info is None:
            quantised = self._quant.get(name)
            if quantised is None:
                raise TensorNotFoundError(name, self.path)
            info = self._stored[quantised.parts[0]]  # the codes: what a digest of this weight covers
        return self.open_file(info.file).read(info.offset, info.nbytes)

    def read(self, name: str) -> np.ndarray:
        quantised = self._quant.get(name)
        if quantised is not None:
            return quantised.read(_StoredAccess(self))
        info = self.info(name)
        return decode_dense(self.raw(name), info.dtype, info.shape)

    def read_rows(self, name: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        quantised = self._quant.get(name)
        if quantised is None:
            return read_dense_rows(self, self.info(name), rows)
        wanted = np.asarray(rows, dtype=np.int64).reshape(-1)
        if wanted.size and (wanted.min() < 0 or wanted.max() >= quantised.shape[0]):
            raise TensorNotFoundError(f"{name}[row {int(wanted.max())}]", self.path)
        per_row = quantised.row_count // max(quantised.shape[0], 1)
        flat = (wanted[:, None] * per_row + np.arange(per_row)[None, :]).reshape(-1)
        values = quantised.read_flat_rows(_StoredAccess(self), flat)
        return values.reshape(len(wanted), *quantised.shape[1:])

    def read_flat_rows(self, name: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows of the tensor viewed as ``[prod(shape[:-1]), shape[-1]]`` (one expert's rows of a
        stacked ``[experts, rows, cols]`` tensor without reading the other experts)."""
        quantised = self._quant.get(name)
        if quantised is not None:
            return quantised.read_flat_rows(_StoredAccess(self), rows)
        info = self.info(name)
        return _StoredAccess(self).flat_rows(name, rows, info.shape[-1] if info.shape else 1)


class _StoredAccess:
    """The stored tensors of a reader, as the dequantisers read them."""

    def __init__(self, reader: SafetensorsReader) -> None:
        self._reader = reader

    def info(self, name: str) -> TensorInfo:
        try:
            return self._reader._stored[name]
        except KeyError:
            raise TensorNotFoundError(name, self._reader.path) from None

    def rows(self, name: str, rows: Sequence[int]) -> np.ndarray:
        info = self.info(name)
        if not info.shape:
            return self.whole(name).reshape(1)[list(rows)]
        return read_dense_rows(self._reader, info, rows)

    def whole(self, name: str) -> np.ndarray:
        info = self.info(name)
        data = self._reader.open_file(info.file).read(info.offset, info.nbytes)
        return decode_dense(data, info.dtype, info.shape)

    def flat_rows(self, name: str, rows: Sequence[int], width: int) -> np.ndarray:
        info = self.info(name)
        if width <= 0 or info.numel % width:
            raise CorruptFileError(info.file, f"tensor '{name}' {list(info.shape)} is not rows of {width}")
        matrix = replace(info, shape=(info.numel // width, width))
        return read_dense_rows(self._reader, matrix, rows)
