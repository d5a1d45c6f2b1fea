"""The answer key: lineage pairs derived from parent links, on a hand-made family tree."""

from __future__ import annotations

import json

import pytest

from modeltrace.errors import ZooError
from modeltrace.zoo.manifest import ModelRecord, lineage_pairs, manifest_json, read_manifest


def _record(
    name: str, parents: list[str], transform: str, arch: str = "llama", **fields: object
) -> ModelRecord:
    return ModelRecord(name, f"models/{name}", "safetensors", arch, 0, parents, transform, False, **fields)


@pytest.fixture
def family() -> list[ModelRecord]:
    return [
        _record("a", [], "base"),
        _record("b", [], "base"),
        _record("g", [], "base", arch="gpt2"),
        _record("a.drop", ["a"], "layers-dropped", layer_map={0: 0, 1: 2, 2: 3}),
        _record("a.drop.sub", ["a.drop"], "layers-subsampled", layer_map={0: 0, 1: 2}),
        _record("a.ft1", ["a"], "finetune"),
        _record("a.ft2", ["a"], "finetune"),
        _record("a.merged", ["a.ft1", "a.ft2"], "merged"),
        _record("a.distilled", [], "distilled", teacher="a"),
    ]


def _by_pair(pairs: list[dict[str, object]]) -> dict[tuple[object, object], dict[str, object]]:
    return {(pair["suspect"], pair["base"]): pair for pair in pairs}


def test_related_pairs_follow_every_ancestor_with_composed_layer_maps(family: list[ModelRecord]) -> None:
    pairs = _by_pair(lineage_pairs(family))
    assert pairs["a.drop.sub", "a.drop"]["layer_map"] == {"0": 0, "1": 2}
    # suspect layer 1 is a.drop's layer 2, which is a's layer 3
    assert pairs["a.drop.sub", "a"] == {
        "suspect": "a.drop.sub", "base": "a", "expected": "related",
        "relation": "layers-dropped+layers-subsampled", "layer_map": {"0": 0, "1": 3},
        "suspect_path": "models/a.drop.sub", "base_path": "models/a",
    }  # fmt: skip
    assert pairs["a.merged", "a"]["relation"] == "finetune+merged"
    assert pairs["a.merged", "a"]["layer_map"] is None
    assert pairs["a.merged", "a.ft2"]["expected"] == "related"


def test_unrelated_pairs_are_independent_roots_of_the_same_architecture(family: list[ModelRecord]) -> None:
    pairs = _by_pair(lineage_pairs(family))
    assert pairs["a.ft1", "b"]["expected"] == "unrelated"
    assert pairs["a.ft1", "a.distilled"]["expected"] == "unrelated"
    assert ("a.ft1", "g") not in pairs  # other architecture: only base-vs-base
    assert pairs["g", "a"]["expected"] == "unrelated"
    assert pairs["a.distilled", "a"]["expected"] == "unrelated"
    assert pairs["a.distilled", "a"]["relation"] == "distilled"
    assert pairs["a", "a"]["expected"] == "same-weights"


def test_no_pair_is_both_related_and_unrelated(family: list[ModelRecord]) -> None:
    pairs = lineage_pairs(family)
    keys = [(pair["suspect"], pair["base"]) for pair in pairs]
    assert len(keys) == len(set(keys))
    related = {key for key, pair in zip(keys, pairs, strict=True) if pair["expected"] != "unrelated"}
    for key in related:
        assert (key[1], key[0]) not in keys or key[0] == key[1]


def test_manifest_round_trips_and_checks_its_version(tmp_path, family: list[ModelRecord]) -> None:
    (tmp_path / "zoo.json").write_text(json.dumps(manifest_json(family, {"quick": True})))
    manifest = read_manifest(tmp_path)
    assert [model["name"] for model in manifest["models"]] == [record.name for record in family]
    assert manifest["models"][3]["layer_map"] == {"0": 0, "1": 2, "2": 3}
    (tmp_path / "zoo.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(ZooError, match="version 99"):
        read_manifest(tmp_path)
