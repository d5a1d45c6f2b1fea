"""The common reader interface every weight format implements, and the byte-accounted file access.

A :class:`TensorReader` lists tensors without reading data, reads a whole tensor, or reads only
chosen rows (indices along axis 0) touching only those rows' bytes. Everything a reader pulls from
disk goes through :class:`RangeFile`, which bounds-checks each request against the file size and
counts the bytes, so ``bytes_read`` is an honest measure of I/O (benchmarks and fingerprints report it).

Values returned by ``read``/``read_rows`` are logical values: floating storage (F16, BF16, F8, and
dequantised formats) comes back as float32 (F64 stays float64); integer storage keeps its numpy
dtype. ``raw`` returns the stored bytes exactly as on disk, for content digests.
"""

from __future__ import annotations

import contextlib
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from modeltrace.errors import (
    CorruptFileError,
    ResourceLimitError,
    TensorNotFoundError,
    UnsupportedFormatError,
)
from modeltrace.formats import limits
from modeltrace.types import Declared, TensorInfo

# numpy dtypes for the dense storage dtypes (safetensors spelling). BF16 and F8 have no numpy
# dtype; they are stored as raw integers and widened by ``decode_dense``.
DENSE_ITEMSIZE: dict[str, int] = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip
_NUMPY_DTYPE: dict[str, str] = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}  # fmt: skip


def _f8_table(exponent_bits: int, mantissa_bits: int, bias: int, ieee_inf: bool) -> np.ndarray:
    """All 256 values of an 8-bit float format, as float32 (E4M3 'fn' has no inf, NaN at 0x7f/0xff)."""
    table = np.empty(256, dtype=np.float32)
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        exponent = (code >> mantissa_bits) & ((1 << exponent_bits) - 1)
        mantissa = code & ((1 << mantissa_bits) - 1)
        max_exponent = (1 << exponent_bits) - 1
        if ieee_inf and exponent == max_exponent:
            table[code] = sign * np.inf if mantissa == 0 else np.nan
        elif not ieee_inf and exponent == max_exponent and mantissa == (1 << mantissa_bits) - 1:
            table[code] = np.nan
        elif exponent == 0:
            table[code] = sign * (mantissa / (1 << mantissa_bits)) * 2.0 ** (1 - bias)
        else:
            table[code] = sign * (1 + mantissa / (1 << mantissa_bits)) * 2.0 ** (exponent - bias)
    return table


F8_E4M3_TABLE = _f8_table(4, 3, 7, ieee_inf=False)  # float8_e4m3fn, as DeepSeek-V3 / Kimi K2 ship
F8_E5M2_TABLE = _f8_table(5, 2, 15, ieee_inf=True)


def decode_dense(buffer: bytes | bytearray | memoryview, dtype: str, shape: Sequence[int]) -> np.ndarray:
    """Turn stored little-endian bytes of a dense dtype into logical values of ``shape``."""
    if dtype == "BF16":
        # bf16 is the top half of a float32: widen in place to avoid a second temporary.
        widened = np.frombuffer(buffer, dtype="<u2").astype(np.uint32)
        widened <<= 16
        values = widened.view(np.float32)
    elif dtype == "F8_E4M3":
        values = F8_E4M3_TABLE[np.frombuffer(buffer, dtype=np.uint8)]
    elif dtype == "F8_E5M2":
        values = F8_E5M2_TABLE[np.frombuffer(buffer, dtype=np.uint8)]
    elif dtype in _NUMPY_DTYPE:
        values = np.frombuffer(buffer, dtype=_NUMPY_DTYPE[dtype])
        if dtype == "F16":
            values = values.astype(np.float32)
    else:
        raise ValueError(f"not a dense dtype: {dtype}")
    return values.reshape(tuple(shape))


def check_shape(path: str | Path, name: str, shape: Sequence[Any]) -> tuple[int, ...]:
    """Validate a shape read from a file header: few non-negative int dims, bounded element count."""
    if not isinstance(shape, (list, tuple)) or len(shape) > limits.MAX_DIMS:
        raise CorruptFileError(path, f"tensor '{name}' has an invalid shape {shape!r:.80}")
    dims: list[int] = []
    count = 1
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
            raise CorruptFileError(path, f"tensor '{name}' has an invalid dimension {dim!r:.40}")
        dims.append(dim)
        count *= dim
        if count > limits.MAX_TENSOR_ELEMENTS:
            raise ResourceLimitError(
                path,
                f"tensor '{name}' claims {count:,}+ elements, over the limit {limits.MAX_TENSOR_ELEMENTS:,}",
            )
    return tuple(dims)


def open_regular(path: str | Path) -> int:
    """A read-only descriptor of ``path``, which must be a regular file (after symlinks).

    Opened non-blocking and checked with fstat before any read: opening a FIFO for reading
    normally blocks until a writer appears (forever, for a hostile model folder), and devices or
    sockets are never model content."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise CorruptFileError(path, f"cannot open file ({error.strerror})") from error
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise UnsupportedFormatError(path, "not a regular file (a FIFO, device or socket); not read")
    os.set_blocking(descriptor, True)
    return descriptor


def read_regular_file(path: str | Path, limit: int) -> bytes:
    """The whole of a small regular file (config, card, index), refusing more than ``limit`` bytes."""
    descriptor = open_regular(path)
    try:
        size = os.fstat(descriptor).st_size
        if size > limit:
            raise ResourceLimitError(path, f"file is {size:,} bytes, over the {limit:,}-byte limit")
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(size + 1)  # read(n) allocates n bytes up front: ask for what is there
    except OSError as error:
        raise CorruptFileError(path, f"cannot read file ({error.strerror})") from error
    finally:
        os.close(descriptor)
    if len(data) > limit:
        raise ResourceLimitError(path, f"file grew past the {limit:,}-byte limit while being read")
    return data


class RangeFile:
    """A read-only regular file accessed by absolute byte ranges, bounds-checked and byte-counted.

    :class:`~modeltrace.formats.remote.RemoteFile` has the same interface over HTTP range requests.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd = -1
        self._fd = open_regular(self.path)
        self.size = os.fstat(self._fd).st_size
        self.bytes_read = 0

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``, or CorruptFileError if the file is too short."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise CorruptFileError(
                self.path,
                f"byte range {offset:,}..{offset + length:,} lies outside the file "
                f"({self.size:,} bytes); the file is truncated or its header is wrong",
            )
        if length > limits.MAX_READ_BYTES:
            raise ResourceLimitError(self.path, f"a single read of {length:,} bytes is over the limit")
        chunks: list[bytes] = []
        remaining, position = length, offset
        while remaining:
            chunk = os.pread(self._fd, min(remaining, 1 << 30), position)
            if not chunk:
                raise CorruptFileError(self.path, f"file ended early at byte {position:,}")
            chunks.append(chunk)
            remaining -= len(chunk)
            position += len(chunk)
        self.bytes_read += length
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()


#: Local stand-ins for remote files: a sparse file of the remote file's size (so that folder
#: layout, sizes and names work unchanged) whose reads go to the opener's object instead of the
#: disk. Filled and emptied by :mod:`modeltrace.formats.remote_model`; keyed by the stand-in's path.
STAND_INS: dict[str, Callable[[], RangeFile]] = {}


@runtime_checkable
class BatchRangeFile(Protocol):
    """A file that fetches several byte ranges together (HTTP: nearby ranges in one request)."""

    def read_ranges(self, ranges: Sequence[tuple[int, int]], max_gap: int = ...) -> list[bytes]:
        """Each ``(offset, length)`` range's bytes; ranges under ``max_gap`` apart are fetched together."""
        ...


#: Gap (bytes) up to which the sampled rows of one tensor are fetched together from a file that
#: reads ranges in batches (a remote file: each request costs a round trip, a skipped row only
#: bandwidth). ``benchmarks/remote_fingerprint.py --row-gap`` measures bytes against requests.
ROW_GAP_BYTES = 0


def row_runs(rows: Iterable[int], row_count: int, path: str | Path, name: str) -> list[tuple[int, int]]:
    """Sorted unique rows grouped into half-open runs ``(start, stop)``; validates the indices."""
    ordered = sorted({int(row) for row in rows})
    if ordered and (ordered[0] < 0 or ordered[-1] >= row_count):
        raise TensorNotFoundError(
            f"{name}[row {ordered[-1] if ordered[-1] >= row_count else ordered[0]}]", path
        )
    runs: list[tuple[int, int]] = []
    for row in ordered:
        if runs and runs[-1][1] == row:
            runs[-1] = (runs[-1][0], row + 1)
        else:
            runs.append((row, row + 1))
    return runs


class TensorReader(ABC):
    """Lazy read-only access to the tensors of one model (one file or a set of shards)."""

    #: Short format name: "safetensors", "pytorch", "gguf", "onnx".
    format: ClassVar[str]

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        #: Format-specific metadata (safetensors ``__metadata__``, GGUF key/values, ONNX props).
        self.metadata: dict[str, Any] = {}
        #: What a user should know about the file beyond its tensors (one sentence each), e.g. a
        #: second checkpoint hidden in it (``unsafe_pickle``).
        self.warnings: list[str] = []
        #: True when the file holds a pickle this reader did not vet, which another loader
        #: (``torch.load``, a zip tool) would read: loading the file elsewhere may execute code.
        self.unsafe_pickle = False
        self._files: dict[str, RangeFile] = {}

    # -- what every format implements ------------------------------------------------------------

    @abstractmethod
    def tensors(self) -> Mapping[str, TensorInfo]:
        """Every logical tensor by name, without reading data (auxiliary scale tensors excluded
        where the reader folds them into their weight)."""

    @abstractmethod
    def read(self, name: str) -> np.ndarray:
        """The whole tensor as logical values (see module doc)."""

    @abstractmethod
    def read_rows(self, name: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows ``rows`` (indices along axis 0, returned in the order given) reading only their bytes."""

    @abstractmethod
    def raw(self, name: str) -> bytes:
        """The stored bytes of the tensor exactly as on disk."""

    # -- shared machinery ------------------------------------------------------------------------

    def stored_tensors(self) -> Mapping[str, TensorInfo]:
        """Every tensor as stored on disk, auxiliary ones included (for content digests)."""
        return self.tensors()

    def declared(self) -> Declared:
        """Lineage claims embedded in the weight file itself (GGUF ``general.*``); none by default."""
        return Declared()

    def info(self, name: str) -> TensorInfo:
        try:
            return self.tensors()[name]
        except KeyError:
            raise TensorNotFoundError(name, self.path) from None

    def open_file(self, path: str | Path) -> RangeFile:
        key = str(path)
        if key not in self._files:
            opener = STAND_INS.get(key)
            self._files[key] = opener() if opener is not None else RangeFile(path)
        return self._files[key]

    @property
    def bytes_read(self) -> int:
        """Bytes pulled from disk so far by this reader (headers included)."""
        return sum(handle.bytes_read for handle in self._files.values())

    @property
    def total_bytes(self) -> int:
        """Total size on disk of the files this reader covers."""
        return sum(os.path.getsize(file) for file in {info.file for info in self.tensors().values()})

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors())

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()

    def __enter__(self) -> TensorReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_dense_rows(reader: TensorReader, info: TensorInfo, rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """``read_rows`` for a dense row-major tensor stored contiguously at ``info.offset``.

    Consecutive rows are fetched in one request, so reading k scattered rows costs k row-sized
    reads and reading a block costs one. A :class:`BatchRangeFile` (a remote file) gets all runs in
    one call, so it can also merge runs up to ``ROW_GAP_BYTES`` apart.
    """
    wanted = [int(row) for row in rows]
    if not info.shape:
        raise TensorNotFoundError(f"{info.name}[rows] (scalar tensor)", info.file)
    row_shape = info.shape[1:]
    row_elements = 1
    for dim in row_shape:
        row_elements *= dim
    row_bytes = row_elements * DENSE_ITEMSIZE[info.dtype]
    handle = reader.open_file(info.file)
    fetched: dict[int, np.ndarray] = {}
    runs = row_runs(wanted, info.shape[0], info.file, info.name)
    ranges = [(info.offset + start * row_bytes, (stop - start) * row_bytes) for start, stop in runs]
    if isinstance(handle, BatchRangeFile):
        blocks = handle.read_ranges(ranges, ROW_GAP_BYTES)
    else:
        blocks = [handle.read(offset, length) for offset, length in ranges]
    for (start, stop), block in zip(runs, blocks, strict=True):
        values = decode_dense(block, info.dtype, (stop - start, *row_shape))
        for index, row in enumerate(range(start, stop)):
            fetched[row] = values[index]
    if not wanted:
        dtype = np.float32 if info.dtype.startswith(("F", "BF")) else _NUMPY_DTYPE.get(info.dtype, "u1")
        return np.empty((0, *row_shape), dtype=dtype)
    return np.stack([fetched[row] for row in wanted])
