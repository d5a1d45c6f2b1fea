"""The behavioural run of ``probe --reference`` (probe/behaviour_run.py): prompts, references, budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeltrace import api
from modeltrace.errors import UsageError
from modeltrace.probe.behaviour_run import behaviour_prompts, split_references
from modeltrace.probe.prompts import BEHAVIOUR_PROMPTS
from tests.probe.fake_endpoint import FakeConfig, FakeEndpoint

FAST = {"timeout_s": 2.0, "backoff_s": 0.01}


def test_the_prompt_count_must_lie_within_the_prompt_list() -> None:
    assert behaviour_prompts(3) == list(BEHAVIOUR_PROMPTS[:3])
    assert behaviour_prompts(len(BEHAVIOUR_PROMPTS)) == list(BEHAVIOUR_PROMPTS)
    for count in (0, len(BEHAVIOUR_PROMPTS) + 1):
        with pytest.raises(UsageError, match="behaviour_prompts must be between 1 and"):
            behaviour_prompts(count)


def test_references_are_endpoints_or_existing_folders(tmp_path: Path) -> None:
    urls, folders = split_references(["https://a.example/v1", str(tmp_path), "http://b.example"])
    assert urls == ["https://a.example/v1", "http://b.example"]
    assert folders == [tmp_path]
    with pytest.raises(UsageError, match="neither an http"):
        split_references([str(tmp_path / "missing")])


def test_each_reference_answers_every_prompt_once_and_is_counted_apart() -> None:
    """8 prompts: the reference gets GET /models (no --model given) and 8 chat requests, all of them
    counted under its own URL; the target's 8 are added to the identification requests."""
    with FakeEndpoint(FakeConfig(model_seed="base-A")) as target, FakeEndpoint(FakeConfig()) as reference:
        report = api.probe(target.url, references=[reference.url], behaviour_prompts=8, **FAST)
        target_chats = target.chat_requests
    assert reference.chat_requests == 8
    assert report.requests_by_endpoint[reference.url.rstrip("/")] == reference.requests_received == 9
    assert report.requests == report.requests_by_endpoint[target.url.rstrip("/")] == target.requests_received
    assert target_chats >= 8
    assert report.behaviour is not None
    (row,) = report.behaviour.references
    assert row.name == reference.url.rstrip("/")
    assert row.agreements == row.compared == 8  # same seeds: the same "weights" answer alike
