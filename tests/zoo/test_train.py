"""Training loops on a tiny model: deterministic, and they do reduce their objective."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from modeltrace.cli import main
from modeltrace.errors import ZooError
from modeltrace.zoo.arch import ArchConfig, init_params
from modeltrace.zoo.corpus import generate_tokens, make_lexicon

TINY = ArchConfig("llama", vocab_size=0, hidden_size=16, intermediate_size=32, num_layers=2,
                  num_heads=2, num_kv_heads=1, max_positions=16)  # fmt: skip


@pytest.fixture(scope="module")
def corpus() -> tuple[ArchConfig, np.ndarray]:
    lexicon = make_lexicon(0)
    return TINY.replace(vocab_size=len(lexicon.vocab)), generate_tokens(lexicon, 20_000, seed=0)


def test_missing_torch_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from modeltrace.zoo._torch import require_torch

    monkeypatch.setitem(sys.modules, "torch", None)  # what an uninstalled package looks like to import
    with pytest.raises(ZooError, match=r"pip install 'modeltrace\[torch\]'"):
        require_torch()


def test_lm_training_is_deterministic_and_lowers_the_loss(corpus) -> None:
    pytest.importorskip("torch")
    from modeltrace.zoo.train import Schedule, mean_loss, reproducible_torch, train_lm

    config, tokens = corpus
    start = init_params(config, seed=0)
    schedule = Schedule(steps=40, lr=1e-2, warmup=5, batch=8)
    with reproducible_torch(threads=2):
        first, losses = train_lm(start, config, tokens, schedule, seed=1)
    assert mean_loss(first, config, tokens) < mean_loss(start, config, tokens) - 1.0
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_training_on_two_threads_is_bit_for_bit_repeatable(corpus) -> None:
    # the zoo's own width and batch: small models happened to hide the nondeterminism
    pytest.importorskip("torch")
    from modeltrace.zoo.plan import llama_config
    from modeltrace.zoo.train import Schedule, reproducible_torch, train_lm

    config, tokens = corpus
    config = llama_config(config.vocab_size)
    start = init_params(config, seed=0)
    with reproducible_torch(threads=2):
        runs = [
            train_lm(start, config, tokens, Schedule(steps=8, lr=3e-3, batch=16), seed=1)[0] for _ in range(3)
        ]
    assert all(np.array_equal(run[name], runs[0][name]) for run in runs for name in start)


def test_lora_merge_changes_only_the_adapted_projections(corpus) -> None:
    pytest.importorskip("torch")
    from modeltrace.zoo.train import Schedule, train_lora

    config, tokens = corpus
    start = init_params(config, seed=0)
    merged, _ = train_lora(start, config, tokens, Schedule(steps=10, lr=1e-2, warmup=2, batch=8), seed=1)
    changed = {name for name in start if not np.array_equal(start[name], merged[name])}
    assert changed == {f"model.layers.{i}.self_attn.{p}_proj.weight" for i in range(2) for p in ("q", "v")}
    delta = merged["model.layers.0.self_attn.q_proj.weight"] - start["model.layers.0.self_attn.q_proj.weight"]
    assert np.linalg.matrix_rank(delta, tol=1e-6) <= 4  # a merged rank-4 adapter


def test_distillation_moves_the_student_towards_the_teacher(corpus) -> None:
    pytest.importorskip("torch")
    from modeltrace.zoo.train import Schedule, train_distilled, train_lm

    config, tokens = corpus
    teacher, _ = train_lm(init_params(config, 0), config, tokens, Schedule(30, 1e-2, 5, batch=8), seed=1)
    schedule = Schedule(30, 1e-2, 5, batch=8)
    _, kl = train_distilled(teacher, init_params(config, 9), config, tokens, schedule, seed=2)
    assert np.mean(kl[-5:]) < 0.5 * np.mean(kl[:5])


def test_zoo_refuses_a_folder_of_other_files(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        main(["zoo", "build", str(tmp_path), "--quick"])
    assert exit_info.value.code == ZooError.exit_code
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "keep me"
