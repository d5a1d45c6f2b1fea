"""Storage of fingerprint sketches (migrations 0004 and 0005) for the candidate index.

The registry stores bytes and version numbers only: computing a sketch belongs to
:mod:`modeltrace.lineage.sketch` (through the facade), which says which version it computes. On
PostgreSQL with pgvector (migration 0005 made ``sketch_vectors``) each sketch is also kept as a
``vector`` and searched in the database (:mod:`modeltrace.registry.sketch_search`).

Reading every sketch is what a process pays before its first in-process search, so the reads here
go through plain SQL on the driver's rows (no ORM objects, one buffer for all the vectors), and a
SQLite registry of many sketches keeps a copy of them beside the database that the next process
memory-maps once it has checked the copy is current (:mod:`modeltrace.registry.sketch_snapshot`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import TextClause, delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from modeltrace.registry import sketch_search, sketch_snapshot
from modeltrace.registry.schema import FingerprintRow, ModelRow, SketchRow


@dataclass(frozen=True)
class StoredSketches:
    """Every fingerprinted model's sketch at one version: model ids and one row of ``vectors`` each
    (read-only: the index built from them copies what it keeps)."""

    model_ids: np.ndarray  # int64
    vectors: np.ndarray  # float32 [models, dims]


# Models in id order, each sketch found by its key. ``+s.version`` keeps SQLite off the version index:
# through it (every row matches) it read the sketches in index order and sorted 200 MB of them.
_LOAD = text(
    "SELECT m.id, s.vector FROM models m"
    " JOIN fingerprint_sketches s ON s.fingerprint_digest = m.fingerprint_digest"
    " WHERE +s.version = :version AND s.dims = :dims AND m.id > :after ORDER BY m.id"
)


# The snapshot's key: the same rows as _LOAD, read from the indexes only (no sketch bytes); and the
# load with the key's columns, so that a snapshot's key and its vectors come from one read (SQLite).
_KEY = text(
    "SELECT m.id, m.fingerprint_digest, s.rowid FROM models m"
    " JOIN fingerprint_sketches s ON s.fingerprint_digest = m.fingerprint_digest"
    " WHERE s.version = :version AND s.dims = :dims ORDER BY m.id"
)
_LOAD_KEYED = text(
    "SELECT m.id, s.vector, m.fingerprint_digest, s.rowid FROM models m"
    " JOIN fingerprint_sketches s ON s.fingerprint_digest = m.fingerprint_digest"
    " WHERE +s.version = :version AND s.dims = :dims AND m.id > :after ORDER BY m.id"
)


class SketchStore:
    def __init__(self, sessions: sessionmaker, snapshot: Path | None = None) -> None:
        """``snapshot``: where to keep a copy of the sketches for the next process (a SQLite
        registry's file beside the database; see :mod:`modeltrace.registry.sketch_snapshot`)."""
        self._sessions = sessions
        self._snapshot = snapshot
        self._vectors: bool | None = None  # whether sketch_vectors exists (pgvector), once asked

    # --- pgvector ---------------------------------------------------------------------------------

    @property
    def vector_search(self) -> bool:
        """Whether the sketches can be searched in the database (PostgreSQL with pgvector)."""
        if self._vectors is None:
            with self._sessions() as session:
                self._vectors = sketch_search.has_vectors(session.connection())
        return self._vectors

    def search(self, version: int, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` fingerprinted models whose sketch at ``version`` has the largest inner product
        with ``query``, most similar first: (model ids, similarities). Needs :attr:`vector_search`."""
        with self._sessions() as session:
            return sketch_search.nearest(session.connection(), version, query, k)

    def fill_vectors(self) -> int:
        """Write the vector of every sketch that has none (sketches stored before migration 0005
        made the table, or by a version of modeltrace that did not know it); returns how many."""
        if not self.vector_search:
            return 0
        with self._sessions.begin() as session:
            return sketch_search.fill_missing(session.connection())

    # --- sketches ---------------------------------------------------------------------------------

    def all_current(self, version: int) -> bool:
        """Whether every stored fingerprint has a sketch at ``version`` (and, with pgvector, its
        vector): counts over indexes. Sketches reference fingerprints and vectors sketches (foreign
        keys, one per key), so equal counts mean none is missing."""
        with self._sessions() as session:
            fingerprints = session.scalar(select(func.count()).select_from(FingerprintRow)) or 0
            current = session.scalar(
                select(func.count()).select_from(SketchRow).where(SketchRow.version == version)
            )
            if current != fingerprints:
                return False
            return not self.vector_search or sketch_search.count(session.connection()) == current

    def missing(self, version: int, after_id: int = 0) -> list[str]:
        """Digests of the fingerprints models use that have no sketch at ``version`` (never computed,
        or computed by another version of the sketch); only models with an id above ``after_id``."""
        if self.all_current(version):
            return []
        current = select(SketchRow.fingerprint_digest).where(SketchRow.version == version)
        query = (
            select(ModelRow.fingerprint_digest)
            .where(
                ModelRow.fingerprint_digest.is_not(None),
                ModelRow.id > after_id,
                ModelRow.fingerprint_digest.not_in(current),
            )
            .distinct()
        )
        with self._sessions() as session:
            return [digest for digest in session.scalars(query) if digest is not None]

    def put(self, digest: str, version: int, vector: np.ndarray) -> None:
        """Store (or replace) the sketch of fingerprint ``digest`` (and its pgvector copy)."""
        values = np.ascontiguousarray(vector, dtype="<f4")
        with_vector = len(values) == sketch_search.DIMS and self.vector_search  # asked outside the write
        try:
            with self._sessions.begin() as session:
                session.execute(delete(SketchRow).where(SketchRow.fingerprint_digest == digest))
                session.add(SketchRow(fingerprint_digest=digest, version=version, dims=len(values),
                                      vector=values.tobytes()))  # fmt: skip
                if with_vector:
                    session.flush()  # the vector's row references the sketch's
                    sketch_search.put(session.connection(), digest, values)
        except IntegrityError:
            # Another process stored it meanwhile, or the fingerprint was removed: nothing to add.
            return

    def state(self) -> tuple[int, int, int]:
        """(fingerprinted models, highest model id, sketches): changes whenever the index must."""
        with self._sessions() as session:
            models = session.execute(
                select(func.count(), func.max(ModelRow.id)).where(ModelRow.fingerprint_digest.is_not(None))
            ).one()
            sketches = session.scalar(select(func.count()).select_from(SketchRow)) or 0
        return int(models[0] or 0), int(models[1] or 0), int(sketches)

    def load(self, version: int, dims: int, after_id: int = 0) -> StoredSketches:
        """The sketch of every fingerprinted model at ``version`` (of ``dims`` values); only models
        with an id above ``after_id`` when given (those added since an index was built)."""
        params = {"version": version, "dims": dims, "after": after_id}
        keep = self._snapshot is not None and after_id == 0
        with self._sessions() as session:
            if keep and self._snapshot is not None and self._snapshot.exists():
                listed = _driver_rows(session, _KEY, {"version": version, "dims": dims})
                key = sketch_snapshot.key(listed, version, dims)
                kept = sketch_snapshot.read(self._snapshot, key, version, dims)
                if kept is not None:
                    return StoredSketches(*kept)
            rows = _driver_rows(session, _LOAD_KEYED if keep else _LOAD, params)
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join([row[1] for row in rows]), dtype="<f4").reshape(len(rows), dims)
        if keep and self._snapshot is not None and len(rows) >= sketch_snapshot.SNAPSHOT_FROM:
            key = sketch_snapshot.key([(row[0], row[2], row[3]) for row in rows], version, dims)
            sketch_snapshot.write(self._snapshot, key, version, dims, ids, vectors)
        return StoredSketches(ids, vectors.astype(np.float32, copy=False))


def _driver_rows(session: Session, query: TextClause, params: dict[str, int]) -> list[Any]:
    """The load query's rows as the database driver returns them (tuples of int and bytes; the
    result processing of SQLAlchemy's rows cost more than the read itself at 100 000 sketches)."""
    connection = session.connection()
    compiled = query.compile(dialect=connection.dialect)
    ordered = [params[name] for name in compiled.positiontup or []]
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), ordered if compiled.positional else params)
        return cursor.fetchall()  # bytes (or a memoryview, which bytes.join takes too)
    finally:
        cursor.close()
