"""Scan fixtures: the synthetic models of scan_helpers.py, a local Ray instance shared by a module, and
the registry tests' fresh PostgreSQL database (``pg_database``: skipped outside CI without a server,
a failure in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry.conftest import pg_database  # noqa: F401  (a fixture: the registry tests' PostgreSQL rules)
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
