"""A copy of a SQLite registry's sketches in one file beside the database, which the next process
memory-maps instead of reading every sketch's row (100 000 rows cost about half a second of CPU).

The file is trusted only when its key matches the registry's: a SHA-256 over the model ids, their
fingerprint digests and the sketch rows' ids, in model order, for the sketch version and length
asked for. A sketch is a function of its fingerprint (addressed by its own SHA-256) and the sketch
version, and replacing or removing one changes the row ids, so an equal key means equal vectors; the
key's query reads two indexes, not the sketches. Any other file (stale, truncated, foreign) is
ignored and replaced. Written to a temporary name and renamed, so a reader sees a whole file or none.

Layout: ``MAGIC``, then version, dims and count (three little-endian int64) and the 32-byte key, then
``count`` int64 model ids and ``count x dims`` float32 values.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAGIC = b"modeltrace-sketches\n"
_HEADER = len(MAGIC) + 3 * 8 + 32
#: Registries with fewer sketches read them from the database (a few hundredths of a second) and
#: keep no file beside it.
SNAPSHOT_FROM = 10_000


def key(rows: Sequence[tuple[int, str, int]], version: int, dims: int) -> bytes:
    """The key of (model id, fingerprint digest, sketch row id) rows, in model order."""
    models, digests, row_ids = zip(*rows, strict=True) if rows else ((), (), ())
    digest = hashlib.sha256(np.array([version, dims, len(rows)], dtype="<i8").tobytes())
    digest.update(np.array(models, dtype="<i8").tobytes())
    digest.update(np.array(row_ids, dtype="<i8").tobytes())
    digest.update("\n".join(digests).encode())
    return digest.digest()


def read(path: Path, expected: bytes, version: int, dims: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(model ids, vectors) memory-mapped read-only from ``path`` when its key is ``expected``."""
    try:
        with path.open("rb") as handle:
            header = handle.read(_HEADER)
        size = path.stat().st_size
    except OSError:
        return None
    if len(header) != _HEADER or not header.startswith(MAGIC):
        return None
    stored_version, stored_dims, stored_count = np.frombuffer(header, dtype="<i8", count=3, offset=len(MAGIC))
    count = int(stored_count)
    if (stored_version, stored_dims) != (version, dims) or header[-32:] != expected:
        return None
    if size != _HEADER + count * (8 + 4 * dims):
        return None
    ids = np.memmap(path, dtype="<i8", mode="r", offset=_HEADER, shape=(count,))
    vectors = np.memmap(path, dtype="<f4", mode="r", offset=_HEADER + 8 * count, shape=(count, dims))
    return np.asarray(ids, dtype=np.int64), vectors


def write(path: Path, expected: bytes, version: int, dims: int, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Replace ``path`` with these sketches; silently nothing where the folder is not writable."""
    header = MAGIC + np.array([version, dims, len(ids)], dtype="<i8").tobytes() + expected
    try:
        handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(header)
            out.write(np.ascontiguousarray(ids, dtype="<i8").tobytes())
            out.write(np.ascontiguousarray(vectors, dtype="<f4").data)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
