"""Shared fixtures. MODELTRACE_HOME is pinned to a temporary folder for every test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("modeltrace-home")
    monkeypatch.setenv("MODELTRACE_HOME", str(home))
    return home


@pytest.fixture
def shared_dir() -> Path:
    """The ``shared/`` folder beside the checkout (real configs and tokenizer files)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared/ folder not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def quick_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quick lineage zoo, built once per test session (about a minute on 2 idle cores).

    Returns the zoo folder; its manifest is ``<folder>/zoo.json`` (see docs/zoo.md). While
    developing, ``MODELTRACE_TEST_ZOO=/path/to/zoo`` reuses a quick zoo built earlier with
    ``modeltrace zoo build --quick`` instead of building one.
    """
    prebuilt = os.environ.get("MODELTRACE_TEST_ZOO")
    if prebuilt:
        return Path(prebuilt)
    pytest.importorskip("torch", reason="building the zoo needs the torch extra")
    from modeltrace import api

    folder = tmp_path_factory.mktemp("zoo")
    api.build_zoo(folder, quick=True, seed=0)
    return folder
