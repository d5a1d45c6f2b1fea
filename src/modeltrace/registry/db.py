"""Database URLs and engines: SQLite (WAL, foreign keys on) or PostgreSQL through psycopg 3."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from modeltrace.errors import RegistryError
from modeltrace.paths import modeltrace_home

#: The environment variable naming the registry database when ``--db`` is not given.
DB_ENV = "MODELTRACE_DB"
DEFAULT_FILE = "registry.sqlite"


def resolve_url(db: str | None = None) -> str:
    """The database URL: ``db``, else $MODELTRACE_DB, else SQLite under MODELTRACE_HOME.

    ``postgresql://`` and ``postgres://`` URLs use psycopg 3; a bare path means a SQLite file.
    """
    text = (db or os.environ.get(DB_ENV) or "").strip()
    if not text:
        return f"sqlite:///{modeltrace_home() / DEFAULT_FILE}"
    for prefix in ("postgresql://", "postgres://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix) :]
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    return text


def redacted(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside one writer; synchronous=FULL makes each commit durable on return,
    # which is what an acknowledged write promises. busy_timeout queues writers instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_registry_engine(url: str) -> Engine:
    """An engine for ``url`` (already resolved); RegistryError for unsupported or bad URLs."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise RegistryError(f"Not a database URL: {redacted(url)!s} ({error}).") from error
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection per use (NullPool) keeps file handles from outliving the registry object.
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    raise RegistryError(
        f"Unsupported registry database {redacted(url)}: use a SQLite path or a postgresql:// URL."
    )
