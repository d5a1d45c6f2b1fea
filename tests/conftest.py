"""Shared fixtures. MODELTRACE_HOME is pinned to a temporary folder for every test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Files the tests read (real configs, tokenizer files), each with its origin in SOURCES.md.
#: Tests never read anything outside the checkout: a fresh clone must pass on its own.
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("modeltrace-home")
    monkeypatch.setenv("MODELTRACE_HOME", str(home))
    return home


@pytest.fixture
def data_dir() -> Path:
    """``tests/data``: real config.json and tokenizer files (see ``tests/data/SOURCES.md``)."""
    return DATA


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
