"""Behavioural test: statistics known answers, then same vs different checkpoint over HTTP."""

from __future__ import annotations

import pytest

from modeltrace import api
from modeltrace.probe.behaviour import binomial_upper_p, compare_answers, two_proportion_p
from tests.probe.fake_endpoint import FakeConfig, FakeEndpoint

FAST = {"timeout_s": 2.0, "backoff_s": 0.01}


def test_two_proportion_and_binomial_known_answers() -> None:
    # 40/50 vs 25/50: pooled 0.65, z = 0.3 / sqrt(.65*.35*.04) = 3.145 -> one-sided p = 0.00083
    assert two_proportion_p(40, 50, 25, 50) == pytest.approx(0.000830, rel=1e-2)
    assert two_proportion_p(25, 50, 40, 50) > 0.99
    assert binomial_upper_p(0, 40, 0.05) == 1.0
    assert binomial_upper_p(1, 10, 0.5) == pytest.approx(1 - 0.5**10)


def test_compare_answers_separates_same_and_different() -> None:
    target = [f"t{i}" for i in range(40)]
    same = list(target)
    tuned = [t if i % 3 else "x" for i, t in enumerate(target)]  # differs on 14 of 40
    result = compare_answers(target, {"same": same, "tuned": tuned})
    rows = {r.name: r for r in result.references}
    assert rows["same"].verdict(0.05) == "consistent-with-same-checkpoint"
    assert rows["tuned"].verdict(0.05) == "different-checkpoint"
    assert result.closest == "same"


def test_same_and_fine_tuned_checkpoints_over_http() -> None:
    base = FakeConfig(family="qwen3", model_seed="base-A")
    tuned = FakeConfig(family="qwen3", model_seed="base-A", variant_seed="sft-1", disagreement=0.35)
    other = FakeConfig(family="qwen3", model_seed="base-B")
    target_config = FakeConfig(family="qwen3", model_seed="base-A", variant_seed="sft-1", disagreement=0.35)
    with (
        FakeEndpoint(target_config) as target,
        FakeEndpoint(base) as ref_base,
        FakeEndpoint(tuned) as ref_tuned,
        FakeEndpoint(other) as ref_other,
    ):
        report = api.probe(target.url, references=[ref_base.url, ref_tuned.url, ref_other.url], **FAST)
    assert report.tokenizer.verdict == "qwen3"  # one tokenizer family: counts cannot split these
    behaviour = report.behaviour
    assert behaviour is not None
    verdicts = {r.name: r.verdict(behaviour.alpha) for r in behaviour.references}
    assert verdicts[ref_tuned.url] == "consistent-with-same-checkpoint"
    assert verdicts[ref_base.url] == "different-checkpoint"
    assert verdicts[ref_other.url] == "different-checkpoint"
    assert behaviour.closest == ref_tuned.url
    assert report.requests == report.requests_by_endpoint[target.url.rstrip("/")] > 40
