"""Block pairing: the shortlist gives the exhaustive pairing on related MoE models, stays blind to what
the tests look at, and keeps every test's p-value calibrated on independent models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from modeltrace.fingerprint.model import BlockSample, Fingerprint
from modeltrace.lineage import pairing
from modeltrace.lineage.compare import compare_fingerprints
from modeltrace.lineage.comparison import Comparison
from tests.lineage.synthetic_moe import ANCHORS, UNITS, moe


def _pairs(result: Comparison) -> list[tuple[str, str]]:
    return [(m["suspect"], m["base"]) for m in result.block_map]


def _similarities(result: Comparison) -> list[float]:
    return [m["similarity"] for m in result.block_map]


def test_shortlist_gives_the_exhaustive_pairing_and_p_value_on_a_fine_tune() -> None:
    base, weights = moe(1)
    child, _ = moe(2, parent=weights)
    exhaustive = compare_fingerprints(child, base, pairing_method="exhaustive")
    shortlist = compare_fingerprints(child, base, pairing_method="shortlist")
    assert exhaustive.verdict == shortlist.verdict == "related"
    assert shortlist.log10_p == exhaustive.log10_p
    assert _pairs(shortlist) == _pairs(exhaustive)
    # Per-pair and batched products may differ in the last bit of float32, no more.
    np.testing.assert_allclose(_similarities(shortlist), _similarities(exhaustive), rtol=1e-6)
    assert shortlist.pairing["method"] == "shortlist"
    compared = shortlist.pairing["block_pairs_compared"]
    assert compared < shortlist.pairing["block_pairs"]
    values = shortlist.similarity_matrix["values"]
    assert sum(v is not None for row in values for v in row) == compared


def test_shortlist_pairs_ungated_experts_as_the_exhaustive_path_does() -> None:
    """GELU experts (no gate): the summary is the mean feature, the similarity the plain cosine."""
    base, weights = moe(1)
    child, _ = moe(2, parent=weights)
    base, child = (dataclasses.replace(fp, blocks=[dataclasses.replace(b, gate=None) for b in fp.blocks])
                   for fp in (base, child))  # fmt: skip
    exhaustive = compare_fingerprints(child, base, pairing_method="exhaustive")
    shortlist = compare_fingerprints(child, base, pairing_method="shortlist")
    assert shortlist.pairing is not None and shortlist.pairing["method"] == "shortlist"
    assert _pairs(shortlist) == _pairs(exhaustive) and shortlist.log10_p == exhaustive.log10_p
    assert shortlist.verdict == "related" and "unit-signs" not in shortlist.paths_tried


def test_shortlist_finds_experts_moved_between_layers() -> None:
    """Expert blocks relabelled (another layer, another index): the same-position candidate is wrong,
    the summary still shortlists the block each came from."""
    base, weights = moe(1)
    child, _ = moe(2, parent=weights)
    moved = list(child.blocks)
    moved[1], moved[7] = moved[7], moved[1]  # layer 1's shared expert <-> a layer-2 routed expert
    for index in (1, 7):
        old = child.blocks[index]
        moved[index] = BlockSample(old.layer, old.expert, old.units, old.unit_rows, moved[index].up,
                                   moved[index].gate, old.tensors, moved[index].digest)  # fmt: skip
    child = Fingerprint(child.header, None, child.anchors, child.anchor_gram, moved, child.attention)
    exhaustive = compare_fingerprints(child, base, pairing_method="exhaustive")
    shortlist = compare_fingerprints(child, base, pairing_method="shortlist")
    assert _pairs(shortlist) == _pairs(exhaustive) and shortlist.log10_p == exhaustive.log10_p
    assert shortlist.block_map[1]["base"] == base.blocks[7].label


def test_auto_shortlists_only_above_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    base, weights = moe(1)
    child, _ = moe(2, parent=weights)
    assert compare_fingerprints(child, base).pairing["method"] == "exhaustive"
    monkeypatch.setattr(pairing, "EXHAUSTIVE_UNIT_PAIRS", 0)
    assert compare_fingerprints(child, base).pairing["method"] == "shortlist"


def test_block_summaries_are_blind_to_unit_order_and_up_signs() -> None:
    """What chooses the pairing must not move with what the tests read (unit order, up signs)."""
    rng = np.random.default_rng(0)
    up = [rng.standard_normal((UNITS, ANCHORS)) for _ in range(5)]
    gate = [rng.standard_normal((UNITS, ANCHORS)) for _ in range(5)]
    order = rng.permutation(UNITS)
    signs = rng.choice([-1.0, 1.0], size=(UNITS, 1))
    up2 = [u[order] * signs for u in up]
    gate2 = [g[order] for g in gate]
    np.testing.assert_allclose(pairing._summaries(up, gate), pairing._summaries(up2, gate2), atol=1e-12)


def test_shortlist_p_values_are_calibrated_on_independent_models() -> None:
    """Independent MoE models: under the shortlist pairing every test's p-value is still uniform."""
    results = []
    for i in range(40):
        results.append(
            compare_fingerprints(moe(1000 + 2 * i)[0], moe(1001 + 2 * i)[0], pairing_method="shortlist")
        )
    for test in ("exact", "unit_signs", "value_signs"):
        p = np.array([10 ** getattr(r, test)["log10_p"] for r in results])
        assert stats.kstest(p, "uniform").pvalue > 0.001, test
    assert sum(r.verdict == "related" for r in results) <= stats.binom.ppf(0.999, 40, 0.01)
