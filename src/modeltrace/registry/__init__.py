"""The lineage registry: models, fingerprints, labels and the lineage graph in one database.

SQLite under MODELTRACE_HOME by default, PostgreSQL for a team (``postgresql://`` URLs). The schema
is created and upgraded by numbered Alembic migrations (``migrations/versions``) when a registry is
opened. Callers go through :mod:`modeltrace.api` (``open_registry``); this package imports
SQLAlchemy at module level, so the facade imports it only inside functions.
"""

from __future__ import annotations

from modeltrace.registry.db import resolve_url
from modeltrace.registry.store import Registry

__all__ = ["Registry", "resolve_url"]
