"""Training loops of the zoo: plain LM training, LoRA, distillation and a small policy-gradient run.

All loops share :func:`optimize` (AdamW, linear warm-up then cosine decay) over torch leaf
tensors, and draw their batches from a numpy generator seeded per model, so a build is
deterministic on a given machine and thread count.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from modeltrace.zoo.arch import ArchConfig, Params
from modeltrace.zoo.corpus import sample_windows
from modeltrace.zoo.network import Tensor, functional, lm_loss, logits, to_numpy, to_torch, torch


@contextlib.contextmanager
def reproducible_torch(threads: int) -> Iterator[None]:
    """Run torch on ``threads`` CPU threads with deterministic kernels, restoring both after.

    Without ``use_deterministic_algorithms`` two threads sum some gradients (the embedding
    lookup's backward) in varying order; 1e-7 differences grow to 1e-2 over a training run.
    """
    previous = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch.use_deterministic_algorithms(previous[1])


@dataclass(frozen=True)
class Schedule:
    steps: int
    lr: float
    warmup: int = 10
    weight_decay: float = 0.0
    batch: int = 16


def optimize(tensors: Iterable[Tensor], loss_at: Callable[[int], Tensor], schedule: Schedule) -> list[float]:
    """Minimise ``loss_at(step)`` over ``tensors``; returns the loss of every step."""
    optimizer = torch.optim.AdamW(list(tensors), lr=schedule.lr, weight_decay=schedule.weight_decay)

    def factor(step: int) -> float:
        if step < schedule.warmup:
            return (step + 1) / schedule.warmup
        progress = (step - schedule.warmup) / max(1, schedule.steps - schedule.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    losses: list[float] = []
    for step in range(schedule.steps):
        loss = loss_at(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    return losses


def _batches(tokens: np.ndarray, config: ArchConfig, schedule: Schedule, seed: int) -> Callable[[], Tensor]:
    rng = np.random.default_rng([seed, 7004])

    def draw() -> Tensor:
        windows = sample_windows(tokens, schedule.batch, config.max_positions + 1, rng)
        return torch.as_tensor(windows, dtype=torch.long)

    return draw


def train_lm(
    params: Params, config: ArchConfig, tokens: np.ndarray, schedule: Schedule, seed: int
) -> tuple[Params, list[float]]:
    """Next-token training of every parameter on ``tokens``."""
    torch.manual_seed(seed)
    leaves = to_torch(params, requires_grad=True)
    draw = _batches(tokens, config, schedule, seed)
    losses = optimize(leaves.values(), lambda _: lm_loss(leaves, config, draw()), schedule)
    return to_numpy(leaves), losses


def train_lora(
    params: Params,
    config: ArchConfig,
    tokens: np.ndarray,
    schedule: Schedule,
    seed: int,
    targets: tuple[str, ...] = ("q_proj", "v_proj"),
    rank: int = 4,
    alpha: float = 8.0,
) -> tuple[Params, list[float]]:
    """Train a rank-``rank`` LoRA on the ``targets`` projections, then merge it: W + (alpha/r) B A."""
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 7005])
    frozen = to_torch(params)
    adapters: dict[str, tuple[Tensor, Tensor]] = {}
    for name, weight in params.items():
        if any(f"self_attn.{target}.weight" in name for target in targets):
            out_features, in_features = weight.shape
            down = rng.normal(0, 1 / math.sqrt(in_features), (rank, in_features)).astype(np.float32)
            a = torch.tensor(down, requires_grad=True)  # PEFT: A random, B zero
            b = torch.zeros((out_features, rank), requires_grad=True)
            adapters[name] = (a, b)
    scale = alpha / rank

    def merged() -> dict[str, Tensor]:
        return {**frozen, **{name: frozen[name] + scale * (b @ a) for name, (a, b) in adapters.items()}}

    draw = _batches(tokens, config, schedule, seed)
    leaves = [tensor for pair in adapters.values() for tensor in pair]
    losses = optimize(leaves, lambda _: lm_loss(merged(), config, draw()), schedule)
    with torch.no_grad():
        return to_numpy(merged()), losses


def train_distilled(
    teacher: Params,
    student: Params,
    config: ArchConfig,
    tokens: np.ndarray,
    schedule: Schedule,
    seed: int,
    temperature: float = 1.0,
) -> tuple[Params, list[float]]:
    """Train ``student`` (a fresh initialisation) to match the teacher's next-token distributions.

    Only the teacher's *outputs* reach the student, so its weights are independent of the
    teacher's: a lineage test must call the pair unrelated.
    """
    torch.manual_seed(seed)
    teacher_tensors = to_torch(teacher)
    leaves = to_torch(student, requires_grad=True)
    draw = _batches(tokens, config, schedule, seed)

    def loss_at(_: int) -> Tensor:
        windows = draw()[:, :-1]
        with torch.no_grad():
            target = torch.log_softmax(logits(teacher_tensors, config, windows) / temperature, -1)
        predicted = torch.log_softmax(logits(leaves, config, windows) / temperature, -1)
        return functional.kl_div(predicted, target, log_target=True, reduction="batchmean") / windows.shape[1]

    losses = optimize(leaves.values(), loss_at, schedule)
    return to_numpy(leaves), losses


def train_policy_gradient(
    params: Params,
    config: ArchConfig,
    prompts: np.ndarray,
    rewarded_tokens: np.ndarray,
    schedule: Schedule,
    seed: int,
    sample_length: int = 16,
) -> tuple[Params, list[float]]:
    """An RL-style update: REINFORCE with a mean-reward baseline.

    Each step samples ``schedule.batch`` continuations of corpus prompts from the current model;
    the reward of a continuation is the share of its tokens in ``rewarded_tokens`` (a stand-in
    for a preference model). Returns the mean reward per step as the "losses" (it should rise).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 7006])
    generator = torch.Generator().manual_seed(seed)
    leaves = to_torch(params, requires_grad=True)
    rewarded = torch.as_tensor(np.isin(np.arange(config.vocab_size), rewarded_tokens))
    rewards_seen: list[float] = []
    prompt_length = config.max_positions - sample_length

    def loss_at(_: int) -> Tensor:
        sequence = torch.as_tensor(sample_windows(prompts, schedule.batch, prompt_length, rng))
        with torch.no_grad():
            for _step in range(sample_length):
                probs = torch.softmax(logits(leaves, config, sequence)[:, -1], -1)
                sequence = torch.cat((sequence, torch.multinomial(probs, 1, generator=generator)), 1)
        continuation = sequence[:, prompt_length:]
        reward = rewarded[continuation].float().mean(1)
        rewards_seen.append(float(reward.mean()))
        advantage = reward - reward.mean()
        log_probs = torch.log_softmax(logits(leaves, config, sequence[:, :-1]), -1)
        taken = log_probs.gather(-1, sequence[:, 1:, None])[:, prompt_length - 1 :, 0].sum(1)
        return -(advantage * taken).mean()

    optimize(leaves.values(), loss_at, schedule)
    return to_numpy(leaves), rewards_seen


def mean_loss(
    params: Params, config: ArchConfig, tokens: np.ndarray, batches: int = 4, seed: int = 0
) -> float:
    """Held-out style loss estimate on ``batches`` random windows (no gradient)."""
    rng = np.random.default_rng([seed, 7007])
    tensors = to_torch(params)
    with torch.no_grad():
        values = [
            float(
                lm_loss(
                    tensors,
                    config,
                    torch.as_tensor(sample_windows(tokens, 16, config.max_positions + 1, rng)),
                )
            )
            for _ in range(batches)
        ]
    return float(np.mean(values))
