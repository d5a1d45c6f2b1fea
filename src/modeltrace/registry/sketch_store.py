"""Storage of fingerprint sketches (migration 0004) for the candidate index.

The registry stores bytes and version numbers only: computing a sketch belongs to
:mod:`modeltrace.lineage.sketch` (through the facade), which says which version it computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from modeltrace.registry.schema import ModelRow, SketchRow


@dataclass(frozen=True)
class StoredSketches:
    """Every fingerprinted model's sketch at one version: model ids and one row of ``vectors`` each."""

    model_ids: np.ndarray  # int64
    vectors: np.ndarray  # float32 [models, dims]


class SketchStore:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    def missing(self, version: int, after_id: int = 0) -> list[str]:
        """Digests of the fingerprints models use that have no sketch at ``version`` (never computed,
        or computed by another version of the sketch); only models with an id above ``after_id``."""
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
        """Store (or replace) the sketch of fingerprint ``digest``."""
        values = np.ascontiguousarray(vector, dtype="<f4")
        try:
            with self._sessions.begin() as session:
                session.execute(delete(SketchRow).where(SketchRow.fingerprint_digest == digest))
                session.add(SketchRow(fingerprint_digest=digest, version=version, dims=len(values),
                                      vector=values.tobytes()))  # fmt: skip
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
        query = (
            select(ModelRow.id, SketchRow.vector)
            .join(SketchRow, SketchRow.fingerprint_digest == ModelRow.fingerprint_digest)
            .where(SketchRow.version == version, SketchRow.dims == dims, ModelRow.id > after_id)
            .order_by(ModelRow.id)
        )
        with self._sessions() as session:
            rows = session.execute(query).all()
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype="<f4").reshape(len(rows), dims)
        return StoredSketches(ids, vectors.astype(np.float32))
