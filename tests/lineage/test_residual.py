"""The residual-dimension test's null: exactly uniform p-values for independently trained models,
even when they saw the same data (shared token structure in every embedding)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats

from modeltrace.fingerprint.model import Fingerprint, ResidualSample
from modeltrace.fingerprint.sampling import DEFAULT_SEED
from modeltrace.lineage.features import SharedAnchors
from modeltrace.lineage.residual import residual_test
from tests.lineage.synthetic import make_params


def _embedding_only(embedding: np.ndarray, keep: int | None = None) -> Fingerprint:
    """A fingerprint holding just the residual sample of ``embedding`` (every row an anchor)."""
    residual = ResidualSample.from_frame(embedding.astype(np.float32), keep, DEFAULT_SEED)
    return Fingerprint({}, None, [], np.zeros((0, 0), np.float32), residual=residual)


def _all_rows(rows: int) -> SharedAnchors:
    positions = np.arange(rows, dtype=np.int64)
    return SharedAnchors(positions, positions, 0, rows)


def test_null_is_uniform_on_independent_pairs_trained_on_the_same_data() -> None:
    """200 independent pairs of synthetic models whose embeddings share the data's latent token
    structure (``latent @ mix``): the residual-dimension p-values are uniform (Kolmogorov-Smirnov)."""
    shared = _all_rows(400)
    log_ps = []
    for pair in range(200):
        s = make_params(1000 + 2 * pair, layers=1, hidden=48, inner=24)["model.embed_tokens.weight"]
        b = make_params(1001 + 2 * pair, layers=1, hidden=48, inner=24)["model.embed_tokens.weight"]
        result = residual_test(_embedding_only(s), _embedding_only(b), shared)
        assert result is not None and result.dims == 48
        log_ps.append(result.log_p)
    p_values = np.exp(log_ps)
    assert stats.kstest(p_values, "uniform").pvalue > 0.01
    assert np.mean(p_values < 0.05) < 0.1  # and no excess of small p-values


def test_a_derivative_keeps_every_dimension_and_a_residual_permutation_hides_it() -> None:
    base = make_params(1, hidden=48)["model.embed_tokens.weight"]
    rng = np.random.default_rng(3)
    tuned = base + 0.3 * base.std() * rng.standard_normal(base.shape).astype(np.float32)
    flipped = tuned * rng.choice([-1.0, 1.0], 48).astype(np.float32)  # RMSNorm symmetry: signs flipped
    shared = _all_rows(400)
    found = residual_test(_embedding_only(flipped), _embedding_only(base), shared)
    assert found is not None and found.fixed_points == 48 and found.log_p < np.log(1e-50)
    permuted = flipped[:, rng.permutation(48)]
    hidden = residual_test(_embedding_only(permuted), _embedding_only(base), shared)
    assert hidden is not None and hidden.log_p > np.log(0.01)


def test_dead_dimensions_are_left_out_not_matched_by_index() -> None:
    """A constant column has no direction; ties must not be broken by index (that would invent fixed
    points), so such dimensions leave the test on either side."""
    rng = np.random.default_rng(0)
    s, b = rng.standard_normal((2, 400, 48)).astype(np.float32)
    s[:, :20] = 0.5  # twenty dead dimensions in S, at the same indices as ...
    b[:, :20] = 0.0  # ... twenty dead ones in B
    result = residual_test(_embedding_only(s), _embedding_only(b), _all_rows(400))
    assert result is not None and result.dims == 28 and result.fixed_points < 5


def test_different_widths_or_old_fingerprints_do_not_run_the_test() -> None:
    rng = np.random.default_rng(0)
    narrow, wide = (
        _embedding_only(rng.standard_normal((50, 32))),
        _embedding_only(rng.standard_normal((50, 48))),
    )
    assert residual_test(narrow, wide, _all_rows(50)) is None
    old = Fingerprint({}, None, [], np.zeros((0, 0), np.float32))  # format 2: no residual sample
    assert residual_test(old, wide, _all_rows(50)) is None


def _root(name: str, models: dict[str, dict]) -> str:
    """The independently initialised model a zoo model descends from (a distilled student is its own)."""
    while models[name]["parents"] and models[name]["transform"] != "distilled":
        name = models[name]["parents"][0]
    return name


def test_zoo_independent_pairs_are_not_flagged(quick_zoo: Path) -> None:
    """The quick zoo's independent pairs: every pair of the same width gets a residual-dimension
    p-value and none is small. Pairs are reduced to their independently initialised roots (the many
    derivatives of llama-s0 against llama-s1 are one sample, not thirty); the p-values of the roots are
    checked for uniformity (KS), and benchmarks/residual_null.py measures the null on more models."""
    from modeltrace.api._lineage import load_or_fingerprint
    from modeltrace.lineage.features import shared_anchors

    manifest = json.loads((quick_zoo / "zoo.json").read_text())
    models = {model["name"]: model for model in manifest["models"]}
    roots: set[tuple[str, str]] = set()
    all_p = []
    loaded: dict[str, Fingerprint] = {}

    def fingerprint(path: str) -> Fingerprint:
        if path not in loaded:
            loaded[path] = load_or_fingerprint(quick_zoo / path)
        return loaded[path]

    for pair in manifest["pairs"]:
        if pair["expected"] != "unrelated":
            continue
        s, b = fingerprint(pair["suspect_path"]), fingerprint(pair["base_path"])
        result = residual_test(s, b, shared_anchors(s, b))
        if result is not None:
            all_p.append(float(np.exp(result.log_p)))
            roots.add(tuple(sorted((_root(pair["suspect"], models), _root(pair["base"], models)))))
    assert len(all_p) >= 40 and min(all_p) > 0.01 / len(all_p)  # nothing a Bonferroni test at 1% flags
    assert len(roots) >= 4  # llama-s0, llama-s1, the distilled student; gpt2-s0, gpt2-s1
    root_p = []
    for s_name, b_name in sorted(roots):
        s, b = fingerprint(models[s_name]["path"]), fingerprint(models[b_name]["path"])
        result = residual_test(s, b, shared_anchors(s, b))
        assert result is not None
        root_p.append(float(np.exp(result.log_p)))
    assert stats.kstest(root_p, "uniform").pvalue > 0.01
