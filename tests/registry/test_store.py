"""The registry store on SQLite and PostgreSQL: idempotent adds, detected edges, lineage, tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text

from modeltrace import api
from modeltrace.errors import RegistryError


def _names(edges: list[dict]) -> set[tuple[str, str]]:
    return {(edge["suspect"], edge["base"]) for edge in edges}


def test_add_detects_derivations_and_is_idempotent(db_url: str, lineage_models: dict[str, Path]) -> None:
    with api.open_registry(db_url) as registry:
        first = api.registry_add(lineage_models["base"], registry=registry)
        assert first["created"] and first["detected"] == []
        assert api.registry_add(lineage_models["stranger"], registry=registry)["detected"] == []
        child = api.registry_add(lineage_models["child"], registry=registry)
        assert _names(child["detected"]) == {("child", "base")}
        edge = child["detected"][0]
        assert edge["verdict"] == "related" and edge["log10_p"] < -10 and edge["test"]
        again = api.registry_add(lineage_models["child"], registry=registry)
        assert not again["created"] and again["detected"] == []
        listing = api.registry_list(registry=registry)
        assert [m["name"] for m in listing["models"]] == ["base", "stranger", "child"]
        assert listing["total"] == 3
        shown = api.registry_show("child", registry=registry)
        assert shown["oms_root"] and shown["tensor_root"] and shown["card"]["total_params"] > 0
        assert shown["fingerprint"] and len(shown["detected"]) == 1
        stored = api.registry_edge(shown["detected"][0]["id"], registry=registry)
        matrix = stored["evidence"]["similarity_matrix"]
        assert len(matrix["values"]) == len(matrix["suspect_blocks"]) > 0
        assert stored["fingerprints"]["suspect"] == shown["fingerprint"]
        assert stored["modeltrace_version"] == api.version()


def test_lineage_tree_and_conflicts(db_url: str, lineage_models: dict[str, Path]) -> None:
    with api.open_registry(db_url) as registry:
        api.registry_add(lineage_models["base"], registry=registry)
        api.registry_add(lineage_models["stranger"], registry=registry)
        # child claims the stranger as its base: the weights say otherwise.
        api.registry_add(
            lineage_models["child"], registry=registry, declared_bases=[("stranger", "finetune")]
        )
        api.registry_add(lineage_models["grandchild"], name="gc", registry=registry, from_scratch=True)
        lineage = api.registry_lineage("gc", registry=registry)
        assert ("gc", "child") in _names(lineage["detected"])
        messages = {c["message"] for c in lineage["conflicts"]}
        assert "declared from scratch, detected derived from child" in messages
        assert "declared base stranger, detected base" in messages
        tree = lineage["tree"]
        assert tree["model"] == "gc"
        child_entry = next(b for b in tree["bases"] if b["node"]["model"] == "child")
        kinds = {(b["kind"], b["node"]["model"]) for b in child_entry["node"]["bases"]}
        assert ("declared", "stranger") in kinds and ("detected", "base") in kinds
        undeclared = api.registry_lineage("base", registry=registry)
        assert undeclared["conflicts"] == [] and {d["model"] for d in undeclared["descendants"]} >= {"child"}
        # Nothing declared and the weights show shared ancestry only: the direction is an assumption,
        # and the lineage says so.
        child = next(d for d in undeclared["descendants"] if d["model"] == "child")
        assert child["direction"].startswith("assumed")


def test_undeclared_base_conflict(db_url: str, lineage_models: dict[str, Path]) -> None:
    with api.open_registry(db_url) as registry:
        api.registry_add(lineage_models["base"], registry=registry)
        api.registry_add(lineage_models["child"], registry=registry)
        conflicts = api.registry_lineage("child", registry=registry)["conflicts"]
        assert [c["message"] for c in conflicts] == ["undeclared base base"]


def test_fingerprint_and_label_files(db_url: str, lineage_models: dict[str, Path], tmp_path: Path) -> None:
    fp_file = tmp_path / "child.mtfp"
    api.fingerprint(lineage_models["child"], fp_file)
    label = api.label_create(
        lineage_models["base"], name="base-model", license="apache-2.0", from_scratch=True
    )
    label_file = api.label_write(label, tmp_path / "label.json")
    with api.open_registry(db_url) as registry:
        from_label = api.registry_add(label_file, registry=registry)
        assert from_label["model"]["label"]["level"].startswith("L")
        assert from_label["model"]["fingerprint"] is None and from_label["model"]["license"] == "Apache-2.0"
        # The weights of the labelled model arrive later: the same digest, so the same model.
        merged = api.registry_add(lineage_models["base"], registry=registry)
        assert not merged["created"] and merged["model"]["name"] == "base-model"
        assert merged["model"]["fingerprint"] is not None
        child = api.registry_add(fp_file, name="child-fp", registry=registry)
        assert _names(child["detected"]) == {("child-fp", "base-model")}
        assert child["model"]["digest"].startswith("mtfp:")
        ranking = api.registry_identify(lineage_models["grandchild"], registry=registry)
        assert ranking["closest_ancestor"] in ("default/child-fp", "default/base-model")
        assert all(row["p_value_adjusted"] is not None for row in ranking["candidates"])


def test_remove_and_name_clash(db_url: str, lineage_models: dict[str, Path]) -> None:
    with api.open_registry(db_url) as registry:
        api.registry_add(lineage_models["base"], registry=registry)
        api.registry_add(lineage_models["child"], registry=registry)
        with pytest.raises(RegistryError, match="already taken"):
            api.registry_add(lineage_models["stranger"], name="base", registry=registry)
        api.registry_add(lineage_models["stranger"], name="base", namespace="team-b", registry=registry)
        with pytest.raises(RegistryError, match="several models"):
            api.registry_show("base", registry=registry)
        assert api.registry_show("team-b/base", registry=registry)["namespace"] == "team-b"
        assert api.registry_remove("default/base", registry=registry)["name"] == "base"
        child = api.registry_show("child", registry=registry)
        assert child["detected"] == []
        with pytest.raises(RegistryError, match="No model"):
            api.registry_show("default/base", registry=registry)


def test_tokens_are_hashed_and_scoped(db_url: str) -> None:
    with api.open_registry(db_url) as registry:
        token = api.token_create("team-a", registry=registry)
        assert api.token_namespace(token, registry=registry) == "team-a"
        assert api.token_namespace(token[:-1] + ("A" if token[-1] != "A" else "B"), registry=registry) is None
        assert api.token_namespace("nonsense", registry=registry) is None
        with registry.engine.connect() as connection:
            stored = [
                tuple(row) for row in connection.execute(text("SELECT public_id, secret_hash FROM tokens"))
            ]
        assert len(stored) == 1 and token.split("_", 2)[2] not in json.dumps(stored)


def test_license_check_over_detected_ancestry(db_url: str, lineage_models: dict[str, Path]) -> None:
    with api.open_registry(db_url) as registry:
        api.registry_add(lineage_models["base"], registry=registry)
        api.registry_add(lineage_models["child"], registry=registry)
        result = api.registry_license_check("child", registry=registry, use="commercial", mau=10)
        names = json.dumps(result["report"]["ancestry"])
        assert "base" in names and result["profile"]["mau"] == 10


def test_migrations_build_the_declared_schema(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from modeltrace.registry.schema import Base

    with api.open_registry(db_url) as registry, registry.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        # sketch_vectors exists only where PostgreSQL has pgvector (migration 0005), outside the models.
        differences = [
            d for d in differences if not (d[0] == "remove_table" and d[1].name == "sketch_vectors")
        ]
        assert differences == []
        tables = {
            "models",
            "fingerprints",
            "labels",
            "declared_edges",
            "detected_edges",
            "license_results",
            "fee_schedules",
            "revenue_reports",
            "revenue_report_history",
        }
        assert set(sa_inspect(connection).get_table_names()) >= {*tables, "tokens"}
        if connection.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_declared_edges_from_a_model_card(
    db_url: str, lineage_models: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    carded = tmp_path / "carded"
    shutil.copytree(lineage_models["child"], carded)
    (carded / "README.md").write_text("---\nbase_model: stranger\nlicense: apache-2.0\n---\n# a fine-tune\n")
    with api.open_registry(db_url) as registry:
        api.registry_add(lineage_models["base"], registry=registry)
        api.registry_add(lineage_models["stranger"], registry=registry)
        model = api.registry_add(carded, registry=registry)["model"]
        assert [(d["base"], d["origin"]) for d in model["declared"]] == [
            ("stranger", "README.md front-matter")
        ]
        assert model["license"] == "apache-2.0"
        lineage = api.registry_lineage("carded", registry=registry)
        assert [c["message"] for c in lineage["conflicts"]] == ["declared base stranger, detected base"]
