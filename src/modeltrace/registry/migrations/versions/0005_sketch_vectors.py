"""Sketch vectors: the sketches as pgvector ``vector(512)`` on PostgreSQL where the extension exists,
and an index on the sketches' (version, dims, fingerprint) everywhere (issue 14).

The index makes "is every sketch current?" one count over a small index instead of a scan of every
sketch's row (a cold ``identify`` asks it first), and lists the current sketches without their bytes
(the key of a SQLite registry's sketch snapshot, ``registry/sketch_snapshot.py``).

On PostgreSQL with the ``vector`` extension available (``pg_available_extensions``), the extension
is created (or used, when a database administrator created it already) and the table
``sketch_vectors`` holds each sketch once more as a ``vector(512)``, so that ``identify`` searches in
the database (``ORDER BY sketch <#> :query LIMIT k``) instead of loading every sketch into the
process. Its rows hang off ``fingerprint_sketches`` (ON DELETE CASCADE): replacing or removing a
sketch removes its vector in the same transaction; the registry writes the new vector beside the new
sketch and fills vectors missing for existing sketches from their bytes when it first searches. No
ANN index is built: the search is an exact scan, so its answer is the exact numpy index's
(docs/scale.md, "Candidate index"). The vector is stored PLAIN (inline): 2 056 bytes is just over
PostgreSQL's 2 KB TOAST threshold, and a scan that fetched each vector from the TOAST table would be
several times slower.

Nothing else happens on SQLite or on a PostgreSQL without the extension (Debian's packages ship none),
nor where creating it is not permitted (it needs a superuser unless installed already): the registry
then loads the sketches into the process as before.

Revision ID: 0005
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: The sketch's length when this migration was written (``lineage.sketch.SKETCH_DIMS``); a migration
#: must not import the running code, and a sketch of another length needs a new migration anyway.
DIMS = 512
_log = logging.getLogger(__name__)


def _vector_extension(connection: sa.Connection) -> bool:
    """Whether the ``vector`` extension is installed in this database now (creating it if available)."""
    installed = "SELECT 1 FROM pg_extension WHERE extname = 'vector'"
    if connection.exec_driver_sql(installed).first() is not None:
        return True
    available = "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
    if connection.exec_driver_sql(available).first() is None:
        return False
    try:
        with connection.begin_nested():  # a refusal must not abort the migration's transaction
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    except DBAPIError as error:
        _log.warning("pgvector is available but was not created (%s); sketches are searched in the process.",
                     str(error.orig).strip())  # fmt: skip
        return False
    return True


def upgrade() -> None:
    op.create_index(
        "ix_fingerprint_sketches_current", "fingerprint_sketches", ["version", "dims", "fingerprint_digest"]
    )
    connection = op.get_bind()
    if connection.dialect.name != "postgresql" or not _vector_extension(connection):
        return
    connection.exec_driver_sql(
        "CREATE TABLE sketch_vectors ("
        " fingerprint_digest VARCHAR(64) PRIMARY KEY"
        " REFERENCES fingerprint_sketches (fingerprint_digest) ON DELETE CASCADE,"
        f" sketch vector({DIMS}) NOT NULL)"
    )
    connection.exec_driver_sql("ALTER TABLE sketch_vectors ALTER COLUMN sketch SET STORAGE PLAIN")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS sketch_vectors")
    op.drop_index("ix_fingerprint_sketches_current", table_name="fingerprint_sketches")
