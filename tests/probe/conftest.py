"""Probe test fixtures: the fake endpoint module and one shared build of the built-in probe set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modeltrace import api
from modeltrace.probe import library, probeset


@pytest.fixture(scope="session")
def builtin_probe_set_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the built-in probe set once per session (seconds) instead of once per test."""
    home = tmp_path_factory.mktemp("probeset-home")
    digest = library.library_digest(library.library_specs(home))
    references = {spec.name: library.load(spec) for spec in library.builtin_specs()}
    path = probeset.cache_path(home, digest)
    probeset.write_cache(path, probeset.build_probe_set(references, digest))
    return path


@pytest.fixture(autouse=True)
def _seed_probe_set_cache(_isolated_home: Path, builtin_probe_set_file: Path) -> None:
    """Each test's fresh MODELTRACE_HOME starts with the cached built-in probe set."""
    target = _isolated_home / "probe" / builtin_probe_set_file.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(builtin_probe_set_file, target)


@pytest.fixture
def builtin_set() -> probeset.ProbeSet:
    return api.probe_set()
