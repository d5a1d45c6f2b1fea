"""A SQLite registry's sketch snapshot (registry/sketch_snapshot.py): the next process memory-maps the
sketches from a file beside the database, and only while the file matches the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modeltrace.lineage.sketch import SKETCH_DIMS, SKETCH_VERSION
from modeltrace.registry import Registry, sketch_snapshot
from tests.registry.bulk import insert_sketches


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setattr(sketch_snapshot, "SNAPSHOT_FROM", 10)  # a few sketches are enough here
    vectors = np.random.default_rng(3).standard_normal((40, SKETCH_DIMS)).astype(np.float32)
    opened = Registry(str(tmp_path / "registry.sqlite"))
    insert_sketches(opened, vectors)
    return opened


def _load(registry: Registry) -> tuple[np.ndarray, np.ndarray]:
    stored = Registry(registry.url).sketches.load(SKETCH_VERSION, SKETCH_DIMS)  # as a new process would
    return stored.model_ids, stored.vectors


def test_the_next_load_maps_the_snapshot_with_the_same_sketches(registry: Registry, tmp_path: Path) -> None:
    snapshot = tmp_path / "registry.sqlite.sketches"
    ids, vectors = _load(registry)
    assert snapshot.exists() and not isinstance(vectors, np.memmap)
    again_ids, again = _load(registry)
    assert isinstance(again, np.memmap)
    assert np.array_equal(again_ids, ids) and np.array_equal(again, vectors)


def test_a_changed_registry_is_read_again(registry: Registry) -> None:
    ids, vectors = _load(registry)
    digest = f"{5:064x}"  # model ids[5]'s fingerprint (tests/registry/bulk.py)
    registry.sketches.put(digest, SKETCH_VERSION, np.ones(SKETCH_DIMS, dtype=np.float32))
    replaced_ids, replaced = _load(registry)
    assert not isinstance(replaced, np.memmap)
    assert np.array_equal(replaced_ids, ids) and np.array_equal(replaced[5], np.ones(SKETCH_DIMS))
    registry.remove(int(ids[7]))
    after_ids, after = _load(registry)
    assert int(ids[7]) not in after_ids.tolist() and len(after) == len(vectors) - 1
    assert isinstance(_load(registry)[1], np.memmap)  # and the new state is kept in turn


def test_a_damaged_or_foreign_snapshot_is_ignored_and_replaced(registry: Registry, tmp_path: Path) -> None:
    snapshot = tmp_path / "registry.sqlite.sketches"
    _, vectors = _load(registry)
    snapshot.write_bytes(snapshot.read_bytes()[:-4])  # truncated
    _, read = _load(registry)
    assert not isinstance(read, np.memmap) and np.array_equal(read, vectors)
    snapshot.write_bytes(b"not a snapshot")
    assert np.array_equal(_load(registry)[1], vectors)
    assert isinstance(_load(registry)[1], np.memmap)


def test_small_registries_keep_no_snapshot(tmp_path: Path) -> None:
    opened = Registry(str(tmp_path / "registry.sqlite"))
    insert_sketches(opened, np.ones((3, SKETCH_DIMS), dtype=np.float32))
    assert len(opened.sketches.load(SKETCH_VERSION, SKETCH_DIMS).model_ids) == 3
    assert not (tmp_path / "registry.sqlite.sketches").exists()
