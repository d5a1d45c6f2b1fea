"""Behavioural test: does the endpoint answer like a reference model, token for token?

Token counts name a tokenizer family; checkpoints inside one family (a base model and its
fine-tune) share the tokenizer and need behaviour. Following Nikolic et al. 2025, "Model
Provenance Testing for LLMs": send the same prompts with greedy decoding (``temperature=0``,
``max_tokens=1``) to the target and to each reference and count agreeing next tokens.

Two tests, both with Holm-Bonferroni across the references:

* **same checkpoint?** H0: the target and reference disagree on at most
  :data:`SAME_CHECKPOINT_TOLERANCE` of prompts (serving noise). One-sided binomial test on the
  disagreements; rejecting H0 means "a different checkpoint". Not rejecting means "consistent
  with the same checkpoint", not proof of it.
* **closest reference** (two or more references): one-sided two-proportion z-test that a
  reference's agreement rate exceeds the best other reference's. A reference whose adjusted
  p-value is below alpha is reported as significantly closest.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from modeltrace.errors import BudgetExhaustedError
from modeltrace.probe.client import ProbeClient
from modeltrace.stats import holm

DEFAULT_ALPHA = 0.05
#: Greedy decoding of the same weights can still differ on a few prompts (batching, kernels).
SAME_CHECKPOINT_TOLERANCE = 0.05


def binomial_upper_p(successes: int, trials: int, rate: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, rate)."""
    if successes <= 0:
        return 1.0
    from scipy import stats  # seconds to import: only when a behavioural test runs

    return float(stats.binom.sf(successes - 1, trials, rate))


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """One-sided pooled two-proportion z-test, H1: p1 > p2. Returns 1.0 when undefined."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    difference = x1 / n1 - x2 / n2
    if variance == 0:
        return 0.0 if difference > 0 else 1.0
    from scipy import stats

    return float(stats.norm.sf(difference / math.sqrt(variance)))


@dataclass(frozen=True)
class ReferenceAgreement:
    name: str
    agreements: int
    compared: int
    p_different: float  # raw p-value of the same-checkpoint test
    p_different_holm: float
    p_closest_holm: float | None  # None with a single reference

    @property
    def rate(self) -> float:
        return self.agreements / self.compared if self.compared else 0.0

    def verdict(self, alpha: float) -> str:
        if self.compared == 0:
            return "not-measured"
        return "different-checkpoint" if self.p_different_holm < alpha else "consistent-with-same-checkpoint"


@dataclass(frozen=True)
class BehaviourResult:
    prompts: int
    alpha: float
    references: tuple[ReferenceAgreement, ...]
    closest: str | None
    #: How each reference was asked: "chat-completions" (an endpoint) or a local model's
    #: "chat-template" / "raw" prompt format (see modeltrace.probe.local_model).
    prompt_formats: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "prompts": self.prompts,
            "alpha": self.alpha,
            "tolerance": SAME_CHECKPOINT_TOLERANCE,
            "closest": self.closest,
            "references": [
                {
                    "reference": r.name,
                    "prompt_format": self.prompt_formats.get(r.name, "chat-completions"),
                    "agreements": r.agreements,
                    "compared": r.compared,
                    "agreement_rate": r.rate,
                    "p_different": r.p_different,
                    "p_different_holm": r.p_different_holm,
                    "p_closest_holm": r.p_closest_holm,
                    "verdict": r.verdict(self.alpha),
                }
                for r in self.references
            ],
        }


def compare_answers(
    target: list[str | None],
    references: dict[str, list[str | None]],
    alpha: float = DEFAULT_ALPHA,
    prompt_formats: dict[str, str] | None = None,
) -> BehaviourResult:
    """The two tests above on greedy answers (None = no answer; such prompts are skipped)."""
    names = sorted(references)
    counts: dict[str, tuple[int, int]] = {}
    for name in names:
        pairs = [
            (t, r) for t, r in zip(target, references[name], strict=False) if t is not None and r is not None
        ]
        counts[name] = (sum(1 for t, r in pairs if t == r), len(pairs))
    raw_different = [
        binomial_upper_p(counts[n][1] - counts[n][0], counts[n][1], SAME_CHECKPOINT_TOLERANCE)
        if counts[n][1]
        else 1.0
        for n in names
    ]
    adjusted_different = holm(raw_different)
    adjusted_closest: list[float | None] = [None] * len(names)
    closest = None
    if len(names) > 1:
        raw_closest = []
        for name in names:
            agree, total = counts[name]
            rival = max((n for n in names if n != name), key=lambda n: counts[n][0] / max(counts[n][1], 1))
            raw_closest.append(two_proportion_p(agree, total, counts[rival][0], counts[rival][1]))
        adjusted = holm(raw_closest)
        adjusted_closest = list(adjusted)
        significant = [name for name, p in zip(names, adjusted, strict=True) if p < alpha]
        closest = significant[0] if len(significant) == 1 else None
    return BehaviourResult(
        prompts=len(target),
        alpha=alpha,
        references=tuple(
            ReferenceAgreement(
                name,
                counts[name][0],
                counts[name][1],
                raw_different[i],
                adjusted_different[i],
                adjusted_closest[i],
            )
            for i, name in enumerate(names)
        ),
        closest=closest,
        prompt_formats=dict(prompt_formats or {}),
    )


def greedy_answers(client: ProbeClient, model: str, prompts: list[str], concurrency: int) -> list[str | None]:
    """Greedy next token (``max_tokens=1``, ``temperature=0``) for each prompt; None where it failed."""

    def ask(prompt: str) -> str | None:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 1,
            "temperature": 0,
        }
        try:
            exchange = client.request("POST", "/chat/completions", body, phase="behaviour")
        except BudgetExhaustedError:
            return None
        reply = exchange.json() if exchange.ok else None
        try:
            content = reply["choices"][0]["message"]["content"]  # type: ignore[index]
        except (TypeError, KeyError, IndexError):
            return None
        return content if isinstance(content, str) else None

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(ask, prompts))
