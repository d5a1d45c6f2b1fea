"""Scan fixtures: the synthetic models of scan_helpers.py and a local Ray instance shared by a module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scan_helpers import write_models


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
