"""The zoo's recipe list, run without training: which models exist, in which order, made how.

Every recipe is run against a recording writer with the training functions replaced by recorders
(they return the parameters unchanged), so a change to a recipe's name, order, parent, transform,
format, schedule, corpus, seed or the tensors its weight-space transform produces shows up here in
seconds. ``recipe_trace.json`` is the trace of the recipes as they were before ``recipes()`` was
split (see its ``origin`` field); rewrite it only when a recipe is meant to change::

    .venv/bin/python tests/zoo/test_recipes.py --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")  # the recipes import the training module, which needs torch

import modeltrace.zoo.train as train
from modeltrace.zoo.corpus import make_lexicon
from modeltrace.zoo.plan import Corpora, Model, ZooPlan
from modeltrace.zoo.recipes import recipes

TRACE = Path(__file__).with_name("recipe_trace.json")
_TRAINING = ("train_lm", "train_lora", "train_distilled", "train_policy_gradient", "mean_loss")


def _tensors(params: dict[str, np.ndarray]) -> dict[str, Any]:
    """Tensor names and shapes exactly, values as a position-weighted sum to 6 digits (enough to see a
    different seed or transform, loose enough for last-bit differences between BLAS builds)."""
    layout = hashlib.sha256(json.dumps({k: list(v.shape) for k, v in params.items()}).encode()).hexdigest()
    weighted = sum(
        float(np.dot(value.astype(np.float64).ravel(), np.cos(np.arange(value.size))))
        for value in params.values()
    )
    return {
        "count": len(params),
        "parameters": sum(value.size for value in params.values()),
        "layout": layout[:16],
        "weighted_sum": f"{weighted:.6g}",
    }


class _RecordingZoo:
    """Stands in for :class:`ZooWriter`: keeps models in memory and records every ``add``."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.models: dict[str, Model] = {}
        self.events = events

    def add(self, name: str, model: Model, parents: list[str], transform: str, **options: Any) -> Any:
        fields = {key: value for key, value in options.items() if key != "layer_map"}
        layer_map = options.get("layer_map")
        self.events.append(
            {
                "add": name,
                "parents": parents,
                "transform": transform,
                "options": json.loads(json.dumps(fields, sort_keys=True)),
                "layer_map": None if layer_map is None else {str(k): v for k, v in sorted(layer_map.items())},
                "config": model.config.hf_config(),
                "vocab": hashlib.sha256("\n".join(model.vocab).encode()).hexdigest()[:16],
                "tensors": _tensors(model.params),
            }
        )
        self.models[name] = model
        return SimpleNamespace(seconds=0.0)


def _corpus_names(corpora: Corpora) -> Callable[[np.ndarray], str]:
    fields = ("base", "domain", "held_out", "held_out_domain")
    by_identity = {id(getattr(corpora, field)): field for field in fields}
    return lambda tokens: by_identity.get(id(tokens), "other")


def _recorders(events: list[dict[str, Any]], corpus: Callable[[np.ndarray], str]) -> dict[str, Callable]:
    def record(call: str, tokens: np.ndarray, sched: train.Schedule, seed: int, **extra: Any) -> None:
        schedule = {"steps": sched.steps, "lr": sched.lr, "warmup": sched.warmup,
                    "weight_decay": sched.weight_decay, "batch": sched.batch}  # fmt: skip
        events.append({"call": call, "corpus": corpus(tokens), "schedule": schedule, "seed": seed, **extra})

    def train_lm(params, config, tokens, sched, seed):  # type: ignore[no-untyped-def]
        record("train_lm", tokens, sched, seed)
        return dict(params), [2.0, 1.0]

    def train_lora(params, config, tokens, sched, seed):  # type: ignore[no-untyped-def]
        record("train_lora", tokens, sched, seed)
        return dict(params), [2.0, 1.0]

    def train_distilled(teacher, student, config, tokens, sched, seed):  # type: ignore[no-untyped-def]
        record("train_distilled", tokens, sched, seed, student=_tensors(student))
        return dict(student), [2.0, 1.0]

    def train_policy_gradient(params, config, tokens, rewarded, sched, seed):  # type: ignore[no-untyped-def]
        record("train_policy_gradient", tokens, sched, seed, rewarded=rewarded.tolist())
        return dict(params), [0.25, 0.5]

    def mean_loss(params, config, tokens):  # type: ignore[no-untyped-def]
        events.append({"call": "mean_loss", "corpus": corpus(tokens), "tensors": _tensors(params)})
        return 1.5

    return {
        "train_lm": train_lm,
        "train_lora": train_lora,
        "train_distilled": train_distilled,
        "train_policy_gradient": train_policy_gradient,
        "mean_loss": mean_loss,
    }


def _zoo_modules() -> list[ModuleType]:
    return [module for name, module in sys.modules.items() if name.startswith("modeltrace.zoo") and module]


def trace(quick: bool, seed: int = 0, patch: Callable[[object, str, object], None] = setattr) -> list[dict]:
    """Run every recipe of a zoo plan with recorded (not real) training; one entry per recipe."""
    plan = ZooPlan.for_mode(quick, seed)
    lexicon = make_lexicon(seed)
    # Tiny stand-in corpora: training is recorded, not run, so only their identity matters.
    corpora = Corpora(lexicon, *(np.arange(n, dtype=np.int64) for n in (11, 12, 13, 14)))
    events: list[dict[str, Any]] = []
    zoo = _RecordingZoo(events)
    fakes = _recorders(events, _corpus_names(corpora))
    originals = {name: getattr(train, name) for name in _TRAINING}
    # Wherever a zoo module imported a training function, it gets the recorder.
    for module in _zoo_modules():
        for name, original in originals.items():
            if getattr(module, name, None) is original:
                patch(module, name, fakes[name])
    out = []
    for name, make in recipes(plan, corpora, zoo):  # type: ignore[arg-type]
        events.clear()
        make()
        out.append({"recipe": name, "events": list(events)})
    return out


@pytest.mark.parametrize("quick", [True, False], ids=["quick", "full"])
def test_recipes_are_the_same_models_made_the_same_way(quick: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = json.loads(TRACE.read_text(encoding="utf-8"))["quick" if quick else "full"]
    actual = trace(quick, patch=monkeypatch.setattr)
    assert [step["recipe"] for step in actual] == [step["recipe"] for step in expected]
    for got, want in zip(actual, expected, strict=True):
        assert got == want, got["recipe"]


def test_every_recipe_adds_exactly_its_own_model() -> None:
    steps = json.loads(TRACE.read_text(encoding="utf-8"))["full"]
    for step in steps:
        added = [event["add"] for event in step["events"] if "add" in event]
        assert added == [step["recipe"]]


if __name__ == "__main__" and "--write" in sys.argv:
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
    payload = {
        "origin": f"tests/zoo/test_recipes.py --write at commit {commit.strip()}",
        "quick": trace(True),
        "full": trace(False),
    }
    # One line per recipe, so that a changed recipe is a one-line diff.
    lines = [f' "origin": {json.dumps(payload["origin"])}']
    for mode in ("quick", "full"):
        steps = ",\n  ".join(json.dumps(step, sort_keys=True) for step in payload[mode])
        lines.append(f' "{mode}": [\n  {steps}\n ]')
    TRACE.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    print(f"wrote {TRACE}: {len(payload['quick'])} quick and {len(payload['full'])} full recipes")
