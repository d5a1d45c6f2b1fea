"""PyTorch checkpoints (``.bin``, ``.pt``, ``.pth``, ``.ckpt``) read without torch and without
executing the pickle, plus sharded ``pytorch_model.bin.index.json`` checkpoints.

The pickle is loaded by an allow-list unpickler (``_torch_pickle``) into plain dicts and
``TensorRef`` descriptions (storage key, dtype, offset, shape, stride); the file layout
(``_torch_container``) says where each storage's bytes are. Nested structures flatten to dotted
names: ``{"model": {"fc.weight": t}}`` lists ``model.fc.weight``; list items use their index.
Top-level scalars (``epoch``, ``global_step``) go to ``metadata``.

Contiguous tensors are one byte range, so ``read_rows`` touches only the requested rows. Views
with other strides (a transposed or sliced tensor saved as is) are gathered from the smallest
storage span covering the requested rows. ``raw`` returns the stored bytes in row-major order, so
a tensor's digest matches the same values saved as safetensors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modeltrace.errors import (
    CorruptFileError,
    ResourceLimitError,
    TensorNotFoundError,
    UnsupportedFormatError,
)
from modeltrace.formats import limits
from modeltrace.formats._index import shard_paths_from_index
from modeltrace.formats._torch_container import read_checkpoint
from modeltrace.formats._torch_pickle import TensorRef, describe
from modeltrace.formats.base import (
    DENSE_ITEMSIZE,
    TensorReader,
    check_shape,
    decode_dense,
    read_dense_rows,
    row_runs,
)
from modeltrace.types import TensorInfo

INDEX_SUFFIX = ".bin.index.json"
#: Name given to the tensor when a file holds a single tensor rather than a dict of them.
ROOT_TENSOR_NAME = "tensor"
_UNSIGNED = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}


@dataclass(frozen=True)
class _Placed:
    """A tensor's view of its storage, located in a file: element ``i`` of the storage is at
    ``storage_start + i * itemsize``."""

    ref: TensorRef
    storage_start: int
    contiguous: bool


def _is_row_major(shape: Sequence[int], stride: Sequence[int]) -> bool:
    expected = 1
    for size, step in zip(reversed(shape), reversed(stride), strict=True):
        if size != 1 and step != expected:
            return False
        expected *= size
    return True


class PyTorchReader(TensorReader):
    """A ``torch.save`` file (zip or legacy), or shards listed by ``pytorch_model.bin.index.json``."""

    format = "pytorch"

    def __init__(self, path: str | Path, shards: Sequence[Path] | None = None) -> None:
        super().__init__(path)
        self._infos: dict[str, TensorInfo] = {}
        self._placed: dict[str, _Placed] = {}
        self._visits_left = 0
        self._name_chars = 0  # of every tensor name flattened so far (all shards)
        if shards is not None:
            shard_paths = list(shards)
        elif self.path.name.endswith(".index.json"):
            shard_paths, index_metadata = shard_paths_from_index(self.path, "PyTorch index")
            self.metadata.update(index_metadata)
        else:
            shard_paths = [self.path]
        for shard in shard_paths:
            self._load(shard)

    # -- parsing -----------------------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        handle = self.open_file(path)
        checkpoint = read_checkpoint(handle)
        self.metadata.update(checkpoint.metadata)
        if checkpoint.warnings:
            self.unsafe_pickle = True
            self.warnings += [f"{path.name}: {warning}" for warning in checkpoint.warnings]
        found: dict[str, TensorRef] = {}
        self._visits_left = checkpoint.opcodes + 1
        self._flatten(path, checkpoint.root, "", 0, found)
        for name, ref in found.items():
            if name in self._infos:
                raise CorruptFileError(path, f"tensor '{name}' also appears in {self._infos[name].file}")
            start, length = checkpoint.locations[ref.storage.key]
            start += ref.storage.element_offset * ref.storage.itemsize
            self._place(path, name, ref, start, length)

    def _flatten(self, path: Path, node: Any, prefix: str, depth: int, found: dict[str, TensorRef]) -> None:
        if depth > limits.MAX_NESTING_DEPTH:
            raise ResourceLimitError(path, f"checkpoint nests deeper than {limits.MAX_NESTING_DEPTH} levels")
        self._visits_left -= 1
        if self._visits_left < 0:
            raise ResourceLimitError(
                path, "checkpoint structure repeats shared lists or dicts so often that walking it explodes"
            )
        if isinstance(node, TensorRef):
            name = prefix or ROOT_TENSOR_NAME
            if name in found:
                raise CorruptFileError(path, f"two tensors flatten to the same name '{name}'")
            self._name_chars += len(name)
            if len(found) >= limits.MAX_TENSORS or self._name_chars > limits.MAX_NAME_CHARS_TOTAL:
                raise ResourceLimitError(
                    path,
                    f"checkpoint lists over {len(found):,} tensors or {self._name_chars:,} name characters",
                )
            found[name] = node
        elif isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    raise UnsupportedFormatError(
                        path, f"checkpoint dict key {describe(key)} under '{prefix[:80]}'"
                    )
                part = key if isinstance(key, str) else describe(key)
                self._flatten(path, value, self._child_name(path, prefix, part), depth + 1, found)
        elif isinstance(node, (list, tuple)):
            for index, value in enumerate(node):
                self._flatten(path, value, self._child_name(path, prefix, str(index)), depth + 1, found)
        elif depth <= 2 and prefix and isinstance(node, (str, int, float)):
            # Top-level scalars describe the checkpoint (epoch, global_step, library versions).
            self.metadata[prefix] = (
                node[:200]
                if isinstance(node, str)
                else describe(node)
                if isinstance(node, int)
                else repr(node)
            )

    def _child_name(self, path: Path, prefix: str, part: str) -> str:
        """``prefix.part``, refusing names no checkpoint writer makes: a pickle can reuse one huge
        key (memoized once) under thousands of entries, which would flatten to gigabytes of names."""
        if len(prefix) + len(part) >= limits.MAX_TENSOR_NAME_CHARS:
            raise ResourceLimitError(
                path,
                f"checkpoint names an entry '{prefix[:40]}...{part[-20:]}' of {len(prefix) + len(part) + 1:,}"
                f" characters, over the limit of {limits.MAX_TENSOR_NAME_CHARS:,}",
            )
        return f"{prefix}.{part}" if prefix else part

    def _place(self, path: Path, name: str, ref: TensorRef, storage_start: int, storage_bytes: int) -> None:
        shape = check_shape(path, name, ref.shape)
        itemsize = DENSE_ITEMSIZE[ref.dtype]
        numel = math.prod(shape)
        if len(self._infos) >= limits.MAX_TENSORS:
            raise ResourceLimitError(path, f"checkpoint lists more than {limits.MAX_TENSORS:,} tensors")
        storage_elements = min(storage_bytes, ref.storage.numel * ref.storage.itemsize) // itemsize
        if numel:
            last = ref.storage_offset + sum(
                (size - 1) * step for size, step in zip(shape, ref.stride, strict=True)
            )
            if last >= storage_elements:
                raise CorruptFileError(
                    path,
                    f"tensor '{name}' {ref.dtype}{list(shape)} (offset {ref.storage_offset:,}, stride "
                    f"{list(ref.stride)}) reaches element {last:,} of a {storage_elements:,}-element storage",
                )
        contiguous = numel == 0 or _is_row_major(shape, ref.stride)
        first_byte = storage_start + min(ref.storage_offset * itemsize, storage_bytes)
        offset = first_byte if contiguous else -1
        self._infos[name] = TensorInfo(name, shape, ref.dtype, numel * itemsize, str(path), offset)
        self._placed[name] = _Placed(ref, storage_start, contiguous)

    # -- the reader contract -------------------------------------------------------------------------

    def tensors(self) -> Mapping[str, TensorInfo]:
        return self._infos

    def raw(self, name: str) -> bytes:
        info = self.info(name)
        placed = self._placed[name]
        if placed.contiguous or info.numel == 0:
            return self.open_file(info.file).read(info.offset if info.offset >= 0 else 0, info.nbytes)
        return self._gather(info, placed, list(range(info.shape[0]))).tobytes()

    def read(self, name: str) -> np.ndarray:
        info = self.info(name)
        return decode_dense(self.raw(name), info.dtype, info.shape)

    def read_rows(self, name: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        info = self.info(name)
        placed = self._placed[name]
        wanted = [int(row) for row in rows]
        if placed.contiguous or not wanted:
            return read_dense_rows(self, info, wanted)
        stored = self._gather(info, placed, wanted)
        return decode_dense(stored.tobytes(), info.dtype, stored.shape)

    def _gather(self, info: TensorInfo, placed: _Placed, rows: list[int]) -> np.ndarray:
        """Rows of a strided view as stored values (unsigned ints of the item size), row-major.

        Reads the one storage span from the first to the last requested row, then lets numpy
        walk the strides over it: views are rare in checkpoints, so simple beats minimal I/O."""
        if not info.shape:
            raise TensorNotFoundError(f"{info.name}[rows] (scalar tensor)", info.file)
        row_runs(rows, info.shape[0], info.file, info.name)  # validates the indices
        itemsize = DENSE_ITEMSIZE[info.dtype]
        ref = placed.ref
        low, high = min(rows), max(rows)
        inner = sum((size - 1) * step for size, step in zip(info.shape[1:], ref.stride[1:], strict=True))
        first = ref.storage_offset + low * ref.stride[0]
        last = ref.storage_offset + high * ref.stride[0] + inner
        span = self.open_file(info.file).read(
            placed.storage_start + first * itemsize, (last - first + 1) * itemsize
        )
        values = np.frombuffer(span, dtype=_UNSIGNED[itemsize])
        block = np.lib.stride_tricks.as_strided(
            values,
            shape=(high - low + 1, *info.shape[1:]),
            strides=tuple(step * itemsize for step in ref.stride),
            writeable=False,
        )
        return np.ascontiguousarray(block[[row - low for row in rows]])
