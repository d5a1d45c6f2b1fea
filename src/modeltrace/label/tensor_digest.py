"""Tensor-level digest: the identity of the weights, independent of files, shards and container.

Definition (version 1, stable; see docs/label.md):

* For each tensor ``t`` listed by ``TensorReader.stored_tensors()`` (auxiliary tensors such as FP8
  block scales included), the tensor digest is
  ``SHA-256( b"modeltrace.tensor.v1\\n" || H || b"\\n" || data )`` where ``H`` is the compact JSON
  array ``[name, dtype, shape]`` (UTF-8, no spaces, non-ASCII kept as is, e.g.
  ``["lm_head.weight","BF16",[32000,4096]]``) and ``data`` is the tensor's stored bytes
  (``TensorReader.raw``: row-major, little-endian for dense dtypes, the block layout for GGUF
  quantised types).
* The root is SHA-256 over the concatenated 32-byte tensor digests, tensors sorted by the UTF-8
  bytes of their names.

The same weights saved as one safetensors file, as N shards, or as a PyTorch checkpoint give the
same root; any change to a name, dtype, shape or byte changes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from modeltrace.errors import CorruptFileError
from modeltrace.formats.base import DENSE_ITEMSIZE, TensorReader
from modeltrace.label._stream import ShortReadError, update_from_file
from modeltrace.types import TensorInfo

DOMAIN = b"modeltrace.tensor.v1\n"

#: Called after each tensor with (tensor name, bytes hashed).
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class TensorManifest:
    """Per-tensor SHA-256 digests (hex) by tensor name, and their root."""

    tensors: dict[str, str]
    root: str
    total_bytes: int


def tensor_header(name: str, dtype: str, shape: tuple[int, ...]) -> bytes:
    """The canonical bytes hashed before a tensor's data."""
    header = json.dumps([name, dtype, list(shape)], separators=(",", ":"), ensure_ascii=False)
    return DOMAIN + header.encode("utf-8") + b"\n"


def root_of(tensors: dict[str, str]) -> str:
    hasher = hashlib.sha256()
    for name in sorted(tensors, key=lambda tensor_name: tensor_name.encode("utf-8")):
        hasher.update(bytes.fromhex(tensors[name]))
    return hasher.hexdigest()


def _streamable(info: TensorInfo) -> bool:
    """True when the stored bytes are one contiguous dense run we can stream from the file."""
    if info.offset < 0 or info.dtype not in DENSE_ITEMSIZE:
        return False
    return info.nbytes == info.numel * DENSE_ITEMSIZE[info.dtype]


def tensor_manifest(
    reader: TensorReader, *, workers: int | None = None, progress: Progress | None = None
) -> TensorManifest:
    """Digest every stored tensor of ``reader`` in parallel (one tensor per thread).

    Dense contiguous tensors are streamed from their file in chunks, so memory stays bounded
    whatever the tensor size; others go through ``reader.raw`` under a lock (readers need not be
    thread-safe).
    """
    infos = list(reader.stored_tensors().values())
    raw_lock = threading.Lock()

    def digest_one(info: TensorInfo) -> tuple[str, str, int]:
        hasher = hashlib.sha256(tensor_header(info.name, info.dtype, info.shape))
        if _streamable(info):
            try:
                hashed = update_from_file(hasher, info.file, info.offset, info.nbytes)
            except ShortReadError as error:
                raise CorruptFileError(info.file, f"tensor '{info.name}': {error}") from error
            except OSError as error:
                raise CorruptFileError(info.file, f"cannot read tensor '{info.name}' ({error})") from error
        else:
            with raw_lock:
                data = reader.raw(info.name)
            hasher.update(data)
            hashed = len(data)
        if progress is not None:
            progress(info.name, hashed)
        return info.name, hasher.hexdigest(), hashed

    infos.sort(key=lambda info: -info.nbytes)
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        results = list(pool.map(digest_one, infos))
    tensors = {name: digest for name, digest, _ in results}
    return TensorManifest(tensors=tensors, root=root_of(tensors), total_bytes=sum(n for *_, n in results))
