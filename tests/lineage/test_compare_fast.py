"""The fast comparison (features whitened in a few large products, independent pieces on threads,
the binomial tail cut where its terms underflow, the rencontres tails cached, features kept across
comparisons) gives bit for bit the answer of the reference path (block by block, one thread, every
term, nothing kept), whole JSON included."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from typing import Any

import numpy as np
import pytest

from modeltrace.fingerprint.model import Fingerprint
from modeltrace.lineage import compare, exact, pairing, paths
from modeltrace.lineage.compare import compare_fingerprints
from modeltrace.lineage.features import FeatureCache, normalised_rows
from tests.lineage.synthetic_moe import moe


def _reference_features(
    fp: Fingerprint, positions: np.ndarray, white: np.ndarray, part: str
) -> list[np.ndarray]:
    """One product per block, as before the features were batched."""
    return [
        normalised_rows(
            (block.up if part == "up" or block.gate is None else block.gate)[:, positions] @ white
        )
        for block in fp.blocks
    ]


def _reference_binomial(n: int, successes: int, u: float) -> float:
    """Every term of the Binomial(n, 1/2) tail, as before it was cut where terms underflow."""
    if n == 0:
        return 0.0
    log_half = n * math.log(0.5)
    log_pmf = [
        math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + log_half for j in range(n + 1)
    ]
    above = log_pmf[successes + 1 :]
    at = log_pmf[successes] + math.log(max(u, 1e-300))
    if not above:
        return at
    peak = max(above)
    return float(np.logaddexp(peak + math.log(sum(math.exp(t - peak) for t in above)), at))


def _json(result: Any) -> str:
    return json.dumps(result.as_dict(), sort_keys=True)


@pytest.fixture(scope="module")
def models() -> dict[str, Fingerprint]:
    base, weights = moe(1, layers=4)
    return {"base": base, "child": moe(2, layers=4, parent=weights)[0], "independent": moe(3, layers=4)[0]}


@pytest.mark.parametrize("suspect", ["child", "independent"])
@pytest.mark.parametrize("method", ["exhaustive", "shortlist"])
def test_fast_path_gives_the_reference_json_bit_for_bit(
    models: dict[str, Fingerprint], suspect: str, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = compare_fingerprints(models[suspect], models["base"], pairing_method=method)  # type: ignore[arg-type]
    with monkeypatch.context() as patched:
        patched.setattr(compare, "_features", _reference_features)
        patched.setattr(paths, "binomial_half_log_p", _reference_binomial)
        patched.setattr(exact, "log_fixed_point_tail", exact.log_fixed_point_tail.__wrapped__)
        reference = compare_fingerprints(models[suspect], models["base"], pairing_method=method, workers=1)  # type: ignore[arg-type]
    assert fast.verdict == ("related" if suspect == "child" else "unrelated")
    assert fast.pairing is not None and fast.pairing["method"] == method
    assert _json(fast) == _json(reference)


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_threads_change_no_bit_of_the_answer(
    models: dict[str, Fingerprint], workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shortlist's pieces, the features and the tests on threads: the same JSON as on one."""
    monkeypatch.setattr(pairing, "EXHAUSTIVE_UNIT_PAIRS", 0)  # auto: the shortlist, cut into pieces
    for suspect in ("child", "independent"):
        one = compare_fingerprints(models[suspect], models["base"], workers=1)
        assert _json(compare_fingerprints(models[suspect], models["base"], workers=workers)) == _json(one)


def test_binomial_tail_drops_only_terms_that_add_nothing() -> None:
    """Up to ~70 000 pooled signs (a Kimi K2 comparison): the same bits as summing every term."""
    rng = random.Random(14)
    cases = [(n, s) for n in range(0, 60) for s in range(n + 1)]
    for n in (1_000, 38_528, 69_248, rng.randrange(100, 80_000)):
        cases += [
            (n, s) for s in (0, 1, n // 2 - 1, n // 2, n // 2 + 1, n // 2 + 300, int(n * 0.6), n - 1, n)
        ]
    for n, s in cases:
        u = rng.random()
        assert exact.binomial_half_log_p(n, s, u) == _reference_binomial(n, s, u), (n, s)


def test_cached_rencontres_tail_is_the_computed_one() -> None:
    for k in (2, 16, 128, 512):
        for f in range(0, k + 1, max(1, k // 16)):
            for strict in (False, True):
                assert exact.log_fixed_point_tail(k, f, strict) == exact.log_fixed_point_tail.__wrapped__(
                    k, f, strict
                )


def test_a_feature_cache_across_comparisons_changes_no_bit(models: dict[str, Fingerprint]) -> None:
    """As identify uses it: one suspect against several bases, its features whitened once."""
    cache = FeatureCache()
    suspect = models["child"]
    for base in ("base", "independent", "base"):
        fresh = compare_fingerprints(suspect, models[base])
        assert _json(compare_fingerprints(suspect, models[base], feature_cache=cache)) == _json(fresh)
    assert cache.hits >= 4  # the suspect's up and gate in the 2nd and 3rd comparisons


def test_the_feature_cache_sees_a_block_replaced(models: dict[str, Fingerprint]) -> None:
    """The same fingerprint object holding another array is a miss, not the stale features."""
    base, weights = moe(1, layers=4)
    suspect = moe(2, layers=4, parent=weights)[0]
    cache = FeatureCache()
    compare_fingerprints(suspect, base, feature_cache=cache)
    suspect.blocks[0] = dataclasses.replace(suspect.blocks[0], up=-suspect.blocks[0].up)
    fresh = compare_fingerprints(suspect, base)
    hits, misses = cache.hits, cache.misses
    assert _json(compare_fingerprints(suspect, base, feature_cache=cache)) == _json(fresh)
    # The suspect's up features are recomputed; its gate and the base's features are still good.
    assert (cache.hits, cache.misses) == (hits + 3, misses + 1)
