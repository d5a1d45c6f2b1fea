"""The sketches in PostgreSQL with pgvector (table ``sketch_vectors``, migration 0005): written beside
each sketch, searched by inner product in the database.

The search is exact (a scan of every vector, no ANN index), so it returns what the in-process exact
index (``lineage.candidates.ExactIndex``) returns for the same sketches: the largest inner products
of float32 unit vectors (models sharing a fingerprint in id order). Every model of the nearest
vectors is at least as near as any model of a vector further away, so taking the n nearest vectors
and their models is exact once they yield k models. Vectors travel as pgvector's text form
written from the float32 values' shortest round-trip decimals, so the database holds exactly the
stored float32 sketch.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Connection, text

#: The vector length the table was made for (migration 0005).
DIMS = 512
TABLE = "sketch_vectors"
_BATCH = 1000

_HAS = text("SELECT to_regclass('sketch_vectors') IS NOT NULL")
_COUNT = text("SELECT count(*) FROM sketch_vectors")
_PUT = text(
    "INSERT INTO sketch_vectors (fingerprint_digest, sketch) VALUES (:digest, CAST(:sketch AS vector))"
)
_WITHOUT = text(
    "SELECT s.fingerprint_digest, s.vector FROM fingerprint_sketches s"
    " LEFT JOIN sketch_vectors v ON v.fingerprint_digest = s.fingerprint_digest"
    " WHERE v.fingerprint_digest IS NULL AND s.dims = :dims"
)
# ``<#>`` is the negative inner product; ordering by it ascending puts the most similar first. The
# nearest vectors are found first, by themselves (one scan of the table and a top-n heap sort), and
# only those are joined with their sketches and models: joined before sorting, the planner (with
# statistics not yet gathered after a bulk load) looked up every vector by key, four times slower.
_NEAREST = text(
    "SELECT m.id, n.distance FROM"
    " (SELECT fingerprint_digest, sketch <#> CAST(:query AS vector) AS distance FROM sketch_vectors"
    "  ORDER BY distance LIMIT :n) n"
    " JOIN fingerprint_sketches s ON s.fingerprint_digest = n.fingerprint_digest"
    " JOIN models m ON m.fingerprint_digest = n.fingerprint_digest"
    " WHERE s.version = :version ORDER BY n.distance, m.id LIMIT :k"
)


def has_vectors(connection: Connection) -> bool:
    """Whether this database keeps sketch vectors (PostgreSQL where migration 0005 found pgvector)."""
    if connection.dialect.name != "postgresql":
        return False
    return bool(connection.execute(_HAS).scalar())


def vector_text(values: np.ndarray) -> str:
    """pgvector's text form of float32 ``values``: each the shortest decimal that reads back as it."""
    return "[" + ",".join(repr(value) for value in np.asarray(values, dtype=np.float32).tolist()) + "]"


def put(connection: Connection, digest: str, values: np.ndarray) -> None:
    """Store the vector of the sketch of ``digest`` (its sketch row must exist in this transaction)."""
    connection.execute(_PUT, {"digest": digest, "sketch": vector_text(values)})


def count(connection: Connection) -> int:
    """The vectors stored (each belongs to one sketch: a key and a foreign key)."""
    return int(connection.execute(_COUNT).scalar() or 0)


def fill_missing(connection: Connection) -> int:
    """Write the vector of every sketch of ``DIMS`` values that has none; returns how many."""
    rows = connection.execute(_WITHOUT, {"dims": DIMS}).all()
    for start in range(0, len(rows), _BATCH):  # one round trip per batch (executemany)
        batch = [
            {"digest": digest, "sketch": vector_text(np.frombuffer(bytes(stored), dtype="<f4"))}
            for digest, stored in rows[start : start + _BATCH]
        ]
        connection.execute(_PUT, batch)
    return len(rows)


def nearest(connection: Connection, version: int, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` models nearest ``query`` by inner product of their sketches at ``version``."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    params = {"query": vector_text(query), "version": version, "k": k, "n": k}
    while True:
        rows = connection.execute(_NEAREST, params).all()
        # Fewer than k models from the n nearest vectors (a vector of an outdated sketch, or of a
        # fingerprint no model uses): look further, until every vector was taken.
        if len(rows) >= k or params["n"] >= count(connection):
            break
        params["n"] *= 4
    ids = np.array([row[0] for row in rows], dtype=np.int64)
    return ids, -np.array([row[1] for row in rows], dtype=np.float32)
