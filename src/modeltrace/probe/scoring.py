"""Score observed per-unit token counts against the references: exact matches, margin, open set.

Pure functions over numbers in memory. The rule, stated once so a report can quote it:

* A unit's observed count is ``(prompt_tokens at k2 - prompt_tokens at k1) / (k2 - k1)``; when
  that is not a whole number the endpoint's counter is not linear in the unit and the unit
  matches nothing.
* A candidate's score is the number of measured units whose observed count equals its expected
  count exactly. No partial credit: one token off is a miss.
* The verdict is the best candidate only if it matches at least :data:`MATCH_THRESHOLD` of the
  measured units **and** leads the runner-up by at least :data:`MIN_MARGIN_UNITS` units, with at
  least :data:`MIN_UNITS` units measured. Otherwise the answer is ``unknown`` (open set).

Why 0.9: the probe set is built so that any two references differ on ``min_pair_distance``
units (17 of 24 for the built-ins), so a wrong library member scores far below 0.9 while the
right one scores 1.0; 0.9 leaves room for a unit or two that a serving stack counts differently
(e.g. normalisation), without letting a merely similar tokenizer through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MATCH_THRESHOLD = 0.9
MIN_MARGIN_UNITS = 2
MIN_UNITS = 8
UNKNOWN = "unknown"


@dataclass(frozen=True)
class UnitObservation:
    """One probe unit measured online."""

    text: str
    category: str
    expected: dict[str, int]
    counts: tuple[int | None, int | None]  # prompt_tokens at the two repeat counts
    repeats: tuple[int, int]

    @property
    def observed(self) -> float | None:
        """Tokens per repeat (may be fractional if the counter is not linear), None if unmeasured."""
        low, high = self.counts
        if low is None or high is None:
            return None
        return (high - low) / (self.repeats[1] - self.repeats[0])

    @property
    def observed_exact(self) -> int | None:
        value = self.observed
        return int(value) if value is not None and value == int(value) else None


@dataclass(frozen=True)
class Candidate:
    name: str
    matches: int
    measured: int

    @property
    def fraction(self) -> float:
        return self.matches / self.measured if self.measured else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "matches": self.matches, "units": self.measured, "fraction": self.fraction}


@dataclass(frozen=True)
class TokenizerVerdict:
    verdict: str
    margin: int  # best minus runner-up, in units
    candidates: tuple[Candidate, ...]  # best first
    measured_units: int
    reason: str
    tied: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "margin": self.margin,
            "margin_fraction": (self.margin / self.measured_units) if self.measured_units else 0.0,
            "candidates": [candidate.to_dict() for candidate in self.candidates],
            "measured_units": self.measured_units,
            "threshold": MATCH_THRESHOLD,
            "min_margin_units": MIN_MARGIN_UNITS,
            "reason": self.reason,
            "tied": list(self.tied),
        }


def score(observations: list[UnitObservation], references: tuple[str, ...]) -> TokenizerVerdict:
    """Apply the exact-match rule in the module docstring."""
    measured = [obs for obs in observations if obs.observed is not None]
    candidates = sorted(
        (
            Candidate(
                name, sum(1 for obs in measured if obs.observed_exact == obs.expected[name]), len(measured)
            )
            for name in references
        ),
        key=lambda candidate: (-candidate.matches, candidate.name),
    )
    if len(measured) < MIN_UNITS:
        return TokenizerVerdict(
            UNKNOWN, 0, tuple(candidates), len(measured),
            f"only {len(measured)} units could be measured (need {MIN_UNITS}); "
            "the endpoint may not report usage.prompt_tokens or the budget ran out",
        )  # fmt: skip
    best = candidates[0]
    runner_up = candidates[1] if len(candidates) > 1 else Candidate("-", 0, len(measured))
    margin = best.matches - runner_up.matches
    tied = tuple(c.name for c in candidates if c.matches == best.matches) if margin == 0 else ()
    if best.fraction < MATCH_THRESHOLD:
        reason = (
            f"no reference matches well enough: best is {best.name} with {best.matches}/{len(measured)} "
            f"units ({best.fraction:.0%}), below the {MATCH_THRESHOLD:.0%} threshold"
        )
        return TokenizerVerdict(UNKNOWN, margin, tuple(candidates), len(measured), reason)
    if margin < MIN_MARGIN_UNITS:
        reason = (
            f"{best.name} and {runner_up.name} match {best.matches} and {runner_up.matches} units; "
            f"a lead under {MIN_MARGIN_UNITS} units cannot tell them apart"
        )
        return TokenizerVerdict(UNKNOWN, margin, tuple(candidates), len(measured), reason, tied)
    reason = (
        f"{best.name} matches {best.matches}/{len(measured)} units exactly; "
        f"runner-up {runner_up.name} matches {runner_up.matches}"
    )
    return TokenizerVerdict(best.name, margin, tuple(candidates), len(measured), reason)


def gateway_flag(observations: list[UnitObservation], verdict: TokenizerVerdict, hints: list[str]) -> dict:  # type: ignore[type-arg]
    """Signs that a gateway recomputed the counts instead of passing the model's own through.

    * counts proportional to text length (a chars/N estimate): every observed count within one
      token of ``ratio x characters`` while no reference matches;
    * exact cl100k counts while identity hints name a non-OpenAI model (gateways often recount
      with tiktoken).
    """
    measured = [(obs, obs.observed) for obs in observations if obs.observed is not None]
    reasons: list[str] = []
    if measured and verdict.verdict == UNKNOWN:
        characters = sum(len(obs.text) for obs, _ in measured)
        ratio = sum(value for _, value in measured) / characters if characters else 0.0
        if ratio > 0 and all(abs(value - ratio * len(obs.text)) <= 1.0 for obs, value in measured):
            reasons.append(
                f"counts are proportional to text length (~{1 / ratio:.1f} characters per token): "
                "looks like an estimate, not a tokenizer"
            )
    if verdict.verdict == "cl100k":
        other = [hint for hint in hints if any(word in hint.lower() for word in _NON_OPENAI_WORDS)]
        if other:
            reasons.append(
                "counts match cl100k exactly but identity hints name another vendor "
                f"({', '.join(sorted(set(other))[:3])}): a gateway may recount tokens with tiktoken"
            )
    return {"suspected": bool(reasons), "reasons": reasons}


_NON_OPENAI_WORDS = (
    "qwen",
    "deepseek",
    "mistral",
    "mixtral",
    "llama",
    "kimi",
    "moonshot",
    "claude",
    "gemini",
    "glm",
)
