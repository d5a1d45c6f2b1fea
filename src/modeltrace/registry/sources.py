"""Which sources the registry already holds: what lets ``modeltrace scan`` skip them before reading.

A read-only query on ``models.source`` (the pinned source string a scan stores), in chunks so that
a hub-sized list stays within the database's limit on bound parameters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modeltrace.registry.schema import ModelRow

if TYPE_CHECKING:
    from modeltrace.registry.store import Registry

_CHUNK = 500


def registered_sources(registry: Registry, sources: list[str]) -> dict[str, dict[str, Any]]:
    """``source -> {id, name, namespace, digest, fingerprint, created_at}`` for the registered ones
    (``created_at`` timezone-aware UTC; when several models share a source, the latest)."""
    found: dict[str, dict[str, Any]] = {}
    unique = sorted(set(sources))
    with Session(registry.engine) as session:
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            rows = session.scalars(select(ModelRow).where(ModelRow.source.in_(chunk)).order_by(ModelRow.id))
            for row in rows:
                created = row.created_at
                if created is not None and created.tzinfo is None:  # SQLite keeps no zone: it was UTC
                    created = created.replace(tzinfo=UTC)
                found[row.source] = {
                    "id": row.id,
                    "name": row.name,
                    "namespace": row.namespace,
                    "digest": row.digest,
                    "fingerprint": row.fingerprint_digest,
                    "created_at": created or datetime.min.replace(tzinfo=UTC),
                }
    return found
