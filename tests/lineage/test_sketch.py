"""Fingerprint sketches and the candidate index: invariances, separation and shortlist recall on
generated models (independent models share "data", the hard case: see synthetic.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modeltrace.api import load_or_fingerprint
from modeltrace.fingerprint.model import Fingerprint
from modeltrace.fingerprint.sampling import DEFAULT_SEED, _token_hash
from modeltrace.lineage.candidates import (
    ExactIndex,
    USearchIndex,
    build_index,
    resolve_kind,
    shortlist,
    usearch_available,
)
from modeltrace.lineage.sketch import SKETCH_DIMS, _selection_hash, compute_sketch, sketch_anchors
from tests.lineage.synthetic import (
    Params,
    drop_layers,
    fine_tune,
    flip_unit_signs,
    make_params,
    permute_heads,
    permute_units,
    rotate_residual,
    write_model,
)


def _fingerprint(folder: Path, params: Params) -> Fingerprint:
    return load_or_fingerprint(write_model(folder, params))


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Fingerprint]:
    folder = tmp_path_factory.mktemp("sketch-family")
    base = make_params(1)
    rng = np.random.default_rng(5)
    variants = {
        "base": base,
        "permuted": permute_units(base, rng),
        "signs": flip_unit_signs(base, rng),
        "heads": permute_heads(base, rng),
        "residual": rotate_residual(base, rng),
        "finetuned": fine_tune(base, rng),
        "dropped": drop_layers(fine_tune(base, rng), [0, 2, 3]),
        "stranger": make_params(2),
    }
    return {name: _fingerprint(folder / name, params) for name, params in variants.items()}


def test_sketch_is_a_unit_vector_of_fixed_size(family: dict[str, Fingerprint]) -> None:
    sketch = compute_sketch(family["base"])
    assert sketch.shape == (SKETCH_DIMS,) and sketch.dtype == np.float32
    assert np.linalg.norm(sketch) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("variant", ["permuted", "signs", "heads", "residual"])
def test_function_preserving_symmetries_leave_the_sketch_in_place(
    family: dict[str, Fingerprint], variant: str
) -> None:
    # Every unit is sampled (96 < 128 per block), so unit order and signs cannot change the moment.
    similarity = float(compute_sketch(family[variant]) @ compute_sketch(family["base"]))
    assert similarity > 0.99, similarity


def test_derived_models_are_nearer_than_an_independent_one(family: dict[str, Fingerprint]) -> None:
    base = compute_sketch(family["base"])
    stranger = float(compute_sketch(family["stranger"]) @ base)
    for variant in ("finetuned", "dropped"):
        related = float(compute_sketch(family[variant]) @ base)
        assert related > 0.6 and related > stranger + 0.3, (variant, related, stranger)


def test_sketch_anchors_are_the_lowest_string_hashes(family: dict[str, Fingerprint]) -> None:
    fp = family["base"]
    assert _selection_hash(DEFAULT_SEED, "s:abc") == _token_hash(DEFAULT_SEED, "s:abc")
    positions, keys = sketch_anchors(fp)
    kept = {fp.anchors[p][1] for p in positions}
    cutoff = max(_token_hash(DEFAULT_SEED, "s:" + token) for token in kept if token is not None)
    left_out = [t for _, t in fp.anchors if t is not None and t not in kept]
    assert all(_token_hash(DEFAULT_SEED, "s:" + token) > cutoff for token in left_out)
    assert keys == [f"s:{fp.anchors[p][1]}" for p in positions]


def test_shortlist_recall_on_generated_families(tmp_path: Path) -> None:
    """Four bases, each with two derivatives, among 16 unrelated models of the same "data": every
    derivative's base must be in its shortlist of 3 out of 20 registered models."""
    rng = np.random.default_rng(7)
    registered: dict[str, np.ndarray] = {}
    suspects: list[tuple[str, np.ndarray]] = []
    for seed in range(1, 5):
        base = make_params(seed)
        registered[f"base{seed}"] = compute_sketch(_fingerprint(tmp_path / f"base{seed}", base))
        for kind, child in (
            ("finetuned", fine_tune(base, rng, scale=0.3)),
            ("pruned", drop_layers(permute_units(fine_tune(base, rng), rng), [0, 1, 3])),
        ):
            suspects.append((f"base{seed}", compute_sketch(_fingerprint(tmp_path / f"{kind}{seed}", child))))
    for seed in range(100, 116):
        stranger = _fingerprint(tmp_path / f"other{seed}", make_params(seed))
        registered[f"other{seed}"] = compute_sketch(stranger)
    names = list(registered)
    index = ExactIndex(np.arange(len(names)), np.stack([registered[n] for n in names]))
    found = [expected in {names[i] for i in shortlist(index, sketch, 3).ids} for expected, sketch in suspects]
    assert sum(found) / len(found) == 1.0, found


def _clustered(count: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((count, SKETCH_DIMS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_exact_index_returns_the_true_nearest_first() -> None:
    rng = np.random.default_rng(0)
    vectors = _clustered(500, rng)
    query = vectors[42] + 0.1 * _clustered(1, rng)[0]
    ids, scores = ExactIndex(np.arange(1000, 1500), vectors).search(query, 5)
    truth = np.argsort(-(vectors @ query))[:5] + 1000
    assert ids.tolist() == truth.tolist() and ids[0] == 1042
    assert np.all(np.diff(scores) <= 0)
    assert len(ExactIndex(np.arange(3), vectors[:3]).search(query, 10)[0]) == 3


@pytest.mark.skipif(
    not usearch_available(), reason="the optional usearch package is not installed on this machine"
)
def test_usearch_index_agrees_with_the_exact_one() -> None:
    rng = np.random.default_rng(1)
    vectors = _clustered(2000, rng)
    ids = np.arange(2000) * 3
    exact, approximate = ExactIndex(ids, vectors), USearchIndex(ids, vectors)
    # HNSW is approximate and its multi-threaded build is not deterministic: an occasional miss is
    # the method, not a defect, so the nearest hit and the top-10 are checked as rates.
    hits = top_hits = 0
    for row in rng.choice(2000, 50, replace=False):
        query = vectors[row] + 0.2 * _clustered(1, rng)[0]
        truth = exact.search(query, 10)
        got = approximate.search(query, 10)
        hits += len(set(truth[0].tolist()) & set(got[0].tolist()))
        if got[0][0] == truth[0][0]:
            top_hits += 1
            assert got[1][0] == pytest.approx(truth[1][0], abs=1e-4)
    assert top_hits >= 48
    assert hits / 500 > 0.95


def test_auto_kind_is_exact_for_small_registries() -> None:
    assert resolve_kind("auto", 10) == "exact"
    assert resolve_kind("auto", 10_000_000) == "usearch"
    assert build_index(np.arange(2), np.eye(2, SKETCH_DIMS, dtype=np.float32), "auto").kind == "exact"


def test_exact_index_grows_by_adding() -> None:
    rng = np.random.default_rng(2)
    vectors = _clustered(300, rng)
    grown = ExactIndex(np.arange(10), vectors[:10])
    for first in range(10, 300, 7):
        grown.add(np.arange(first, min(first + 7, 300)), vectors[first : first + 7])
    whole = ExactIndex(np.arange(300), vectors)
    assert len(grown) == 300
    for row in (3, 150, 299):
        assert grown.search(vectors[row], 5)[0].tolist() == whole.search(vectors[row], 5)[0].tolist()


def test_the_exact_index_lists_equal_sketches_by_id_even_at_the_cut() -> None:
    rng = np.random.default_rng(7)
    twins = rng.standard_normal(SKETCH_DIMS).astype(np.float32)
    others = rng.standard_normal((40, SKETCH_DIMS)).astype(np.float32) * 0.01
    vectors = np.concatenate([np.repeat(twins[None], 6, axis=0), others])
    ids = rng.permutation(1000)[: len(vectors)]
    index = ExactIndex(ids, vectors)
    for k in (1, 3, 6):  # the cut falls among the six equal sketches, or just after them
        found, scores = index.search(twins, k)
        assert list(found) == sorted(ids[:6])[:k]
        assert np.all(scores == scores[0])
