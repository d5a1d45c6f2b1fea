"""What every dequantiser shares: the stored-tensor access it reads through, the weight it describes,
and the small number formats (FP4 E2M1, E8M0 exponents, packed integers) several schemes use.

A :class:`QuantisedWeight` stands for one logical weight (``X.weight`` as the full-precision model
had it) assembled from several stored tensors (packed codes, scales, zero points, ...). It reads
*flat rows*: rows of the logical tensor viewed as a matrix ``[prod(shape[:-1]), shape[-1]]``, and
dequantises only those, fetching only the stored rows (codes and scales) they need wherever the
storage layout keeps a logical row contiguous.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from modeltrace.errors import CorruptFileError, TensorNotFoundError
from modeltrace.types import TensorInfo

#: The 16 values of an FP4 E2M1 code (sign bit 3), as OCP MX and NVFP4 define them.
FP4_E2M1 = np.array(
    [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], dtype=np.float32
)


class Store(Protocol):
    """Access to the stored tensors of one reader (decoded to numpy, dense dtypes only)."""

    def info(self, name: str) -> TensorInfo: ...

    def rows(self, name: str, rows: Sequence[int]) -> np.ndarray:
        """Rows (axis 0) of a stored tensor, only their bytes read; elements of a 1-D tensor."""
        ...

    def whole(self, name: str) -> np.ndarray: ...

    def flat_rows(self, name: str, rows: Sequence[int], width: int) -> np.ndarray:
        """Rows of a stored tensor viewed as a ``[-1, width]`` matrix, only their bytes read."""
        ...


@dataclass(frozen=True)
class QuantisedWeight(ABC):
    """One logical weight assembled from stored parts."""

    name: str  # the logical tensor's name (``X.weight``, or gpt-oss's ``...experts.gate_up_proj``)
    shape: tuple[int, ...]  # the logical (unpacked) shape
    dtype: str  # a short label listed as TensorInfo.dtype: INT4, FP8, NVFP4, MXFP4, NF4 ...
    scheme: str  # the quantisation family: compressed-tensors, gptq, awq, bitsandbytes, mxfp4, fp8
    parts: tuple[str, ...]  # every stored tensor this weight is read from (first: the codes)

    @property
    def row_count(self) -> int:
        return math.prod(self.shape[:-1]) if len(self.shape) > 1 else 1

    @property
    def row_length(self) -> int:
        return self.shape[-1] if self.shape else 1

    @abstractmethod
    def flat_rows(self, store: Store, rows: np.ndarray) -> np.ndarray:
        """Float32 ``[len(rows), shape[-1]]``: the dequantised flat rows ``rows`` (sorted, unique)."""

    def describe(self) -> str:
        """What ``inspect`` says about this weight's encoding (e.g. ``int4 group 128 symmetric``)."""
        return self.dtype.lower()

    def read_flat_rows(self, store: Store, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Flat rows in the order given (duplicates allowed), bounds-checked."""
        wanted = np.asarray(rows, dtype=np.int64).reshape(-1)
        if wanted.size and (wanted.min() < 0 or wanted.max() >= self.row_count):
            raise TensorNotFoundError(f"{self.name}[row {int(wanted.max())}]", store.info(self.parts[0]).file)
        unique, inverse = np.unique(wanted, return_inverse=True)
        if not unique.size:
            return np.empty((0, self.row_length), dtype=np.float32)
        values = np.asarray(self.flat_rows(store, unique), dtype=np.float32)
        return values[inverse]

    def read(self, store: Store) -> np.ndarray:
        return self.read_flat_rows(store, np.arange(self.row_count)).reshape(self.shape)


def corrupt(store: Store, weight: str, problem: str) -> CorruptFileError:
    """The error for stored parts that do not fit together, naming the file and the weight."""
    return CorruptFileError(store.info(weight).file, f"quantised weight '{weight}': {problem}")


def e8m0_to_float(codes: np.ndarray) -> np.ndarray:
    """OCP E8M0 scale bytes as float32 powers of two (2^(code-127)); 255 is NaN."""
    exponents = codes.astype(np.int32) - 127
    values = np.ldexp(np.float32(1.0), exponents).astype(np.float32)
    return np.where(codes.astype(np.int32) == 255, np.float32(np.nan), values)


def unpack_nibbles_low_first(packed: np.ndarray) -> np.ndarray:
    """uint8 ``[..., n]`` -> 4-bit codes ``[..., 2n]``, the low nibble of each byte first
    (gpt-oss MXFP4, compressed-tensors NVFP4/MXFP4)."""
    out = np.empty((*packed.shape[:-1], packed.shape[-1] * 2), dtype=np.uint8)
    out[..., 0::2] = packed & 0x0F
    out[..., 1::2] = packed >> 4
    return out


def unpack_int32(packed: np.ndarray, bits: int, axis: int) -> np.ndarray:
    """Unsigned ``bits``-wide fields of int32 words along ``axis``, field 0 in the lowest bits
    (compressed-tensors and GPTQ order): ``[..., n]`` -> ``[..., n * 32 // bits]`` on that axis."""
    words = np.ascontiguousarray(packed).view(np.uint32)
    per_word = 32 // bits
    mask = np.uint32((1 << bits) - 1)
    fields = [(words >> np.uint32(bits * index)) & mask for index in range(per_word)]
    stacked = np.stack(fields, axis=axis + 1 if axis >= 0 else axis)
    shape = list(words.shape)
    shape[axis] *= per_word
    return stacked.reshape(shape).astype(np.int32)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def block_side(length: int, blocks: int, preferred: int | None = None) -> int | None:
    """Side of the blocks that cut ``length`` into ``blocks`` pieces; ``preferred`` (the config's
    block size, or the common 128) wins whenever it fits, since several sizes can tile one length."""
    if blocks <= 0:
        return None
    for candidate in (preferred, 128):
        if candidate and ceil_div(length, candidate) == blocks:
            return candidate
    size = ceil_div(length, blocks)
    return size if ceil_div(length, size) == blocks else None
