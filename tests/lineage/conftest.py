"""Fixtures for lineage tests; the synthetic models live in ``tests/lineage/synthetic.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lineage.synthetic import Params, write_model


@pytest.fixture
def model_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    counter = {"n": 0}

    def make(params: Params, vocab: list[str] | None = None, dtype: str = "float32") -> Path:
        counter["n"] += 1
        return write_model(tmp_path / f"model{counter['n']}", params, vocab, dtype)

    return make
