"""Registry fixtures: a database URL per test, parametrised over SQLite and PostgreSQL, and a few
synthetic models with known lineage (tests/lineage/synthetic.py).

PostgreSQL runs when MODELTRACE_TEST_PG_URL names a server (``eval "$(.ci/start-postgres.sh)"``;
.ci/run does it). It is skipped only with MODELTRACE_TEST_PG=0, or outside CI when no URL is set;
in CI a missing server fails the tests instead of skipping them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.lineage.synthetic import fine_tune, make_params, write_model

PG_URL_ENV = "MODELTRACE_TEST_PG_URL"


def postgres_admin_url() -> str:
    """The server URL for PostgreSQL tests, or a skip (or failure in CI) that says why not."""
    if os.environ.get("MODELTRACE_TEST_PG") == "0":
        pytest.skip("PostgreSQL registry tests disabled by MODELTRACE_TEST_PG=0")
    url = os.environ.get(PG_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(
                f"CI must run the PostgreSQL registry tests: {PG_URL_ENV} is not set (.ci/run sets it)"
            )
        pytest.skip(
            f"no PostgreSQL server on this machine: set {PG_URL_ENV} "
            '(eval "$(.ci/start-postgres.sh)") or MODELTRACE_TEST_PG=0 to silence this'
        )
    return url


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    url = postgres_admin_url()
    name = f"mt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        # Engines in the test may still hold pooled connections; close them server-side first. Only
        # client sessions: an autovacuum worker visiting the new database runs as a superuser, which
        # this role may not terminate, and DROP DATABASE stops such workers itself.
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND backend_type = 'client backend'",
                (name,),
            )
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A registry database URL: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite'}"
    return request.getfixturevalue("pg_database")


@pytest.fixture(scope="session")
def lineage_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic models: ``base``, ``child`` (fine-tuned from base), ``grandchild`` (from child) and
    ``stranger`` (independently initialised)."""
    folder = tmp_path_factory.mktemp("registry-models")
    base = make_params(1)
    child = fine_tune(base, np.random.default_rng(11))
    grandchild = fine_tune(child, np.random.default_rng(12))
    stranger = make_params(2)
    return {
        name: write_model(folder / name, params)
        for name, params in (
            ("base", base),
            ("child", child),
            ("grandchild", grandchild),
            ("stranger", stranger),
        )
    }


@pytest.fixture(scope="session")
def pgvector_admin_url() -> Iterator[str]:
    """A PostgreSQL server with pgvector (tests/registry/pgvector_server.py), for this session."""
    from tests.registry.pgvector_server import ServerUnavailableError, pgvector_server

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(pgvector_server())
        except ServerUnavailableError as error:
            pytest.skip(f"no PostgreSQL server with pgvector on this machine: {error}")
        yield url


@pytest.fixture
def pgvector_database(pgvector_admin_url: str) -> Iterator[str]:
    """A fresh database on the pgvector server for one test (the extension is created by the
    registry's migration 0005, as on a real server)."""
    import psycopg

    name = f"mt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pgvector_admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield pgvector_admin_url.replace("/postgres?", f"/{name}?", 1)
    with psycopg.connect(pgvector_admin_url, autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'client backend'",
            (name,),
        )
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
