"""Streaming SHA-256 of byte ranges of files, with one reusable buffer per worker thread.

Nothing here reads a whole file into memory: data moves in fixed-size chunks through a
``bytearray`` that each thread allocates once. ``hashlib`` releases the GIL while it hashes a
chunk, so threads hashing different files (or different tensors) run on different cores.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

#: Bytes read per system call. Large enough that syscall overhead vanishes next to SHA-256,
#: small enough to stay in L2/L3 cache between the copy and the hash.
CHUNK_BYTES = 4 * 1024 * 1024

_local = threading.local()


def _buffer() -> memoryview:
    buffer = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = memoryview(bytearray(CHUNK_BYTES))
        _local.buffer = buffer
    return buffer


class ShortReadError(OSError):
    """The file ended before the requested range did (it shrank while being hashed, or lies)."""


def update_from_file(
    hasher: hashlib._Hash, path: str | Path, offset: int = 0, length: int | None = None
) -> int:
    """Feed ``length`` bytes of ``path`` starting at ``offset`` into ``hasher`` (to EOF when None).

    Returns the number of bytes hashed. Raises OSError if the file cannot be read and
    ShortReadError if it ends before ``offset + length``.
    """
    buffer = _buffer()
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if offset:
            os.lseek(descriptor, offset, os.SEEK_SET)
        remaining = length
        total = 0
        while remaining is None or remaining > 0:
            want = CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining)
            got = os.readv(descriptor, [buffer[:want]])
            if got == 0:
                if remaining is not None:
                    raise ShortReadError(f"'{path}' ended {remaining:,} bytes early")
                break
            hasher.update(buffer[:got])
            total += got
            if remaining is not None:
                remaining -= got
        return total
    finally:
        os.close(descriptor)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a whole file, streamed."""
    hasher = hashlib.sha256()
    update_from_file(hasher, path)
    return hasher.hexdigest()
