"""Lineage detection in the scan's workers gives the graph that ``registry add``, one model after
another in one process, gives: the same edges, p-values, Holm adjustments, directions and order."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeltrace import api
from tests.scan.detect_helpers import detections, register_serially, write_family


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_family(tmp_path_factory.mktemp("family"))


@pytest.fixture(scope="module")
def serial_edges(family: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    db = str(tmp_path_factory.mktemp("serial") / "registry.sqlite")
    register_serially(family, db)
    return detections(db)


def test_the_family_has_edges_to_agree_on(serial_edges: list[dict]) -> None:
    """The reference itself: the fine-tunes are found, the stranger is not, the declaration counts."""
    pairs = {(edge["suspect"], edge["base"]) for edge in serial_edges}
    assert {
        ("first-child", "first"),
        ("second-child", "second"),
        ("first-grandchild", "first-child"),
    } <= pairs
    assert not any("stranger" in pair for pair in pairs)
    declared = next(e for e in serial_edges if (e["suspect"], e["base"]) == ("first-child-2", "first"))
    assert not declared["direction"].startswith("assumed")  # the card (and weights) decide, not the order


@pytest.mark.parametrize("fingerprints_from", ["registry", "shared"])
def test_a_parallel_scan_detects_what_registry_add_detects(
    family: list[Path], serial_edges: list[dict], tmp_path: Path, fingerprints_from: str
) -> None:
    db = str(tmp_path / "registry.sqlite")
    result = api.scan([str(path) for path in family], workers=2, db=db, fingerprints_from=fingerprints_from)
    assert result["exit_code"] == 0, result
    assert detections(db) == serial_edges
    detected = {Path(row["source"]).name: row["detected"] for row in result["results"]}
    assert detected["first-child"] >= 1 and detected["first"] == 0


def test_with_a_shortlist_the_bases_detected_meanwhile_join_it(
    family: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shortlist of 2 (from the fourth model on, the candidates are the two nearest by sketch and
    their detected bases, Holm over every registered model): the parent shortlists, the workers
    compare, and the bases detected for earlier models while their comparisons ran still join."""
    import modeltrace.lineage.candidates as candidates

    monkeypatch.setattr(candidates, "DEFAULT_SHORTLIST", 2)
    serial_db, parallel_db = str(tmp_path / "serial.sqlite"), str(tmp_path / "parallel.sqlite")
    register_serially(family, serial_db)
    result = api.scan([str(path) for path in family], workers=2, db=parallel_db)
    assert result["exit_code"] == 0, result
    assert detections(parallel_db) == detections(serial_db) != []


def test_a_detection_failure_is_reported_and_the_scan_goes_on(family: list[Path], tmp_path: Path) -> None:
    """A worker that cannot read a candidate's fingerprint: that row fails (registered, detection
    failed), the others are detected as usual."""
    db = str(tmp_path / "registry.sqlite")
    api.registry_add(str(family[0]), db=db)
    from modeltrace.registry import Registry

    with Registry(db) as store:
        digest = store.get("first")["fingerprint"]
        with store._sessions.begin() as session:  # a corrupt stored fingerprint
            from modeltrace.registry.schema import FingerprintRow

            session.get(FingerprintRow, digest).data = b"PK\x03\x04 not a fingerprint"
    result = api.scan([str(path) for path in family[1:3]], workers=2, db=db)
    rows = {Path(row["source"]).name: row for row in result["results"]}
    assert rows["second"]["status"] == "failed" and "lineage detection failed" in rows["second"]["reason"]
    assert rows["second"]["model_id"] is not None and result["exit_code"] == 3


def test_workers_read_a_postgresql_registry(
    family: list[Path], serial_edges: list[dict], pg_database: str
) -> None:
    """The workers open the parent's PostgreSQL registry read-only (as a cluster's nodes may)."""
    result = api.scan([str(path) for path in family], workers=2, db=pg_database, fingerprints_from="registry")
    assert result["exit_code"] == 0 and result["totals"]["fingerprints_from"] == "registry", result
    assert detections(pg_database) == serial_edges
