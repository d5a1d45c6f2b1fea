"""The registry's candidate index: sketches stored with fingerprints (migration 0004), filled lazily,
and `identify` shortlisting by them with Holm's correction over every registered model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select

from modeltrace import api
from modeltrace.cli import main
from modeltrace.lineage.sketch import SKETCH_DIMS, SKETCH_VERSION
from modeltrace.registry import Registry
from modeltrace.registry.schema import SketchRow


def _sketch_versions(registry: Registry) -> dict[str, int]:
    with registry.engine.connect() as connection:
        rows = connection.execute(select(SketchRow.fingerprint_digest, SketchRow.version))
        return {digest: version for digest, version in rows}


@pytest.fixture
def registered(db_url: str, lineage_models: dict[str, Path]) -> str:
    for name in ("base", "child", "grandchild", "stranger"):
        api.registry_add(lineage_models[name], db=db_url, detect=name == "stranger")
    return db_url


def test_every_registered_fingerprint_gets_a_sketch(registered: str) -> None:
    with api.open_registry(registered) as registry:
        digests = {m["fingerprint"] for m in registry.fingerprinted_models()}
        assert _sketch_versions(registry) == dict.fromkeys(digests, SKETCH_VERSION)
        stored = registry.sketches.load(SKETCH_VERSION, SKETCH_DIMS)
        assert stored.vectors.shape == (4, SKETCH_DIMS)
        assert np.allclose(np.linalg.norm(stored.vectors, axis=1), 1.0, atol=1e-5)


def test_identify_shortlists_and_corrects_over_the_whole_registry(
    registered: str, lineage_models: dict[str, Path]
) -> None:
    result = api.registry_identify(lineage_models["grandchild"], db=registered, shortlist=2, index="exact")
    assert result["shortlist"]["index"] == "exact"
    assert result["shortlist"]["size"] == 2 and result["shortlist"]["searched"] == 4
    assert result["family_size"] == 4
    names = [row["candidate"] for row in result["candidates"]]
    # The grandchild's nearest are its own line (it is registered itself: same weights), not the stranger.
    assert "default/stranger" not in names and "default/base" not in names
    assert result["closest_ancestor"] == "default/grandchild"
    kid = next(row for row in result["candidates"] if row["candidate"] == "default/child")
    assert kid["verdict"] == "related" and kid["sketch_similarity"] > 0.5
    # Holm over 4 hypotheses, the child second smallest: at least 3 x its p-value (4 x for the first).
    assert kid["log10_p_adjusted"] >= kid["log10_p"] + math.log10(3) - 1e-9
    assert set(result["timing"]) == {
        "suspect_seconds",
        "shortlist_seconds",
        "compare_seconds",
        "total_seconds",
    }


def test_shortlist_zero_or_larger_than_the_registry_compares_everyone(
    registered: str, lineage_models: dict[str, Path]
) -> None:
    for size in (0, 10):
        result = api.registry_identify(lineage_models["child"], db=registered, shortlist=size)
        assert result["shortlist"]["index"] == "none" and len(result["candidates"]) == 4
        assert result["family_size"] == 4


def test_missing_and_outdated_sketches_are_computed_when_needed(
    registered: str, lineage_models: dict[str, Path]
) -> None:
    with api.open_registry(registered) as registry:
        digests = sorted(_sketch_versions(registry))
        with registry.engine.begin() as connection:
            connection.execute(delete(SketchRow).where(SketchRow.fingerprint_digest == digests[0]))
        registry.sketches.put(digests[1], SKETCH_VERSION - 1, np.ones(8, dtype=np.float32))
        assert sorted(registry.sketches.missing(SKETCH_VERSION)) == digests[:2]
        result = api.registry_identify(lineage_models["child"], registry=registry, shortlist=1)
        assert result["shortlist"]["sketched_now"] == 2
        assert registry.sketches.missing(SKETCH_VERSION) == []
        assert set(_sketch_versions(registry).values()) == {SKETCH_VERSION}


def test_removing_the_last_model_of_a_fingerprint_removes_its_sketch(registered: str) -> None:
    with api.open_registry(registered) as registry:
        digest = registry.get("stranger")["fingerprint"]
        registry.remove("stranger")
        assert digest not in _sketch_versions(registry)


def test_identify_json_reports_the_shortlist(
    registered: str, lineage_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["identify", str(lineage_models["child"]), "--db", registered, "--shortlist", "1", "--json"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert (exit_info.value.code or 0) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["shortlist"]["size"] == 1
    assert result["shortlist"]["index"] in ("exact", "usearch", "pgvector")
    assert result["family_size"] == 4 and result["closest_ancestor"] == "default/child"
    with pytest.raises(SystemExit):
        main(["identify", str(lineage_models["child"]), "--db", registered, "--shortlist", "1"])
    assert "shortlist: 1 of 4 registered models by sketch" in capsys.readouterr().out


def test_detected_bases_of_the_shortlist_join_it(db_url: str, lineage_models: dict[str, Path]) -> None:
    for name in ("base", "child", "stranger"):
        api.registry_add(lineage_models[name], db=db_url)  # child -> base detected on arrival
    result = api.registry_identify(lineage_models["grandchild"], db=db_url, shortlist=1)
    names = {row["candidate"]: row for row in result["candidates"]}
    assert set(names) == {"default/child", "default/base"}, names
    assert result["shortlist"]["added_bases"] == 1 and result["shortlist"]["size"] == 2
    assert names["default/base"]["sketch_similarity"] is None
    assert result["family_size"] == 3


def test_the_cached_index_takes_models_added_since(db_url: str, lineage_models: dict[str, Path]) -> None:
    with api.open_registry(db_url) as registry:
        for name in ("base", "stranger"):
            api.registry_add(lineage_models[name], registry=registry, detect=False)
        first = api.registry_identify(lineage_models["grandchild"], registry=registry, shortlist=1)
        assert first["shortlist"]["searched"] == 2
        api.registry_add(lineage_models["child"], registry=registry, detect=False)
        again = api.registry_identify(lineage_models["grandchild"], registry=registry, shortlist=1)
        assert again["shortlist"]["index_cached"] and again["shortlist"]["searched"] == 3
        assert [row["candidate"] for row in again["candidates"]] == ["default/child"]
        registry.remove("child")  # a removal rebuilds it
        after = api.registry_identify(lineage_models["grandchild"], registry=registry, shortlist=1)
        assert not after["shortlist"]["index_cached"] and after["shortlist"]["searched"] == 2
