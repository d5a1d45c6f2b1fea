"""Scan fixtures: the synthetic models of scan_helpers.py and a local Ray instance shared by a module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scan.scan_helpers import write_models


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_models(tmp_path_factory.mktemp("scan-models"))


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    """A local Ray instance for the module (2 CPUs), shut down after it; starting one on a busy
    2-core machine takes tens of seconds, so the tests share it."""
    try:
        import ray
    except ImportError:
        pytest.skip("Ray is not installed on this machine (pip install 'modeltrace[ray]')")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _system_config={"worker_register_timeout_seconds": 180},
    )
    try:
        yield
    finally:
        ray.shutdown()


def _registry_conftest() -> object:
    """tests/registry/conftest.py, for its PostgreSQL policy (skip outside CI, fail inside)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "registry" / "conftest.py"
    spec = importlib.util.spec_from_file_location("registry_conftest_for_scan", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pg_registry() -> Iterator[str]:
    """A fresh PostgreSQL database on the registry tests' server (and under their rules: skipped
    outside CI without a server, a failure in CI), dropped afterwards."""
    import psycopg

    admin = _registry_conftest().postgres_admin_url()  # type: ignore[attr-defined]
    name = f"mt_scan_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
