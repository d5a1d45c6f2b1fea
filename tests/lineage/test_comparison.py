"""The typed comparison: a frozen value whose ``as_dict()`` keeps the keys of ``compare --json``."""

from __future__ import annotations

import dataclasses
import json

import pytest

from modeltrace.lineage.compare import compare_fingerprints
from modeltrace.lineage.comparison import Comparison
from tests.lineage.synthetic_moe import moe

# The interface scripts read (docs/lineage.md, "JSON keys"); `pairing` is the one key added since.
CONCLUSIVE_KEYS = [
    "verdict", "p_value", "log10_p", "p_value_kind", "p_value_test", "paths_tried", "alpha", "relation",
    "relations", "direction", "direction_evidence", "structure", "layer_map", "block_map", "effect_size",
    "exact", "unit_signs", "value_signs", "residual_dims", "similarity_matrix", "pairing", "shared_anchors",
    "tensors_used", "bytes_read", "bytes_read_detail", "suspect", "base",
]  # fmt: skip
INCONCLUSIVE_KEYS = [
    "verdict", "p_value", "log10_p", "p_value_kind", "relation", "relations", "direction", "layer_map",
    "reason", "bytes_read", "suspect", "base",
]  # fmt: skip


def test_a_comparison_is_frozen_and_its_json_has_the_interface_keys() -> None:
    base, weights = moe(1)
    child, _ = moe(2, parent=weights)
    result = compare_fingerprints(child, base)
    assert isinstance(result, Comparison) and result.derived and result.conclusive
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.verdict = "unrelated"  # type: ignore[misc]
    as_json = json.loads(json.dumps(result.as_dict()))
    assert list(as_json) == CONCLUSIVE_KEYS
    assert as_json["verdict"] == result.verdict and as_json["log10_p"] == result.log10_p


def test_an_inconclusive_comparison_keeps_its_short_json() -> None:
    base, _ = moe(1)
    empty = dataclasses.replace(base, blocks=[])
    result = compare_fingerprints(empty, base)
    assert result.verdict == "inconclusive" and not result.conclusive and result.p_value is None
    assert list(result.as_dict()) == INCONCLUSIVE_KEYS


def test_facade_fields_appear_once_set() -> None:
    result = Comparison("unrelated", "s", "b", 0)
    assert "suspect_path" not in result.as_dict()
    placed = dataclasses.replace(result, suspect_path="a/s", base_path="a/b")
    assert placed.as_dict()["suspect_path"] == "a/s" and "report" not in placed.as_dict()
