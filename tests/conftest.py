"""Shared fixtures. MODELTRACE_HOME is pinned to a temporary folder for every test."""

from __future__ import annotations

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
