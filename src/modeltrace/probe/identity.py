"""Identity hints that contradict the tokenizer verdict: the disagreement an auditor must see first.

A served id such as ``kimi-k2p5-rl-0317`` over token counts that say ``smollm2`` means either the
id is a decoy or the counts come from something else (a gateway, a different model). Neither is a
verdict, so both are reported side by side. Which family a hint points to comes from the data
table ``data/model_families.yaml`` (model-id patterns to families), never from code.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from modeltrace.probe.hints import Hint
from modeltrace.probe.scoring import UNKNOWN


@dataclass(frozen=True)
class ModelFamily:
    family: str
    pattern: re.Pattern[str]
    tokenizers: tuple[str, ...]  # globs over library names consistent with the family

    def consistent_with(self, verdict: str) -> bool:
        return any(fnmatch.fnmatchcase(verdict, glob) for glob in self.tokenizers)


@cache
def model_families() -> tuple[ModelFamily, ...]:
    """The table of model-id patterns, in the order they are tried."""
    text = resources.files("modeltrace.probe").joinpath("data/model_families.yaml").read_text("utf-8")
    rows = yaml.safe_load(text)
    return tuple(
        ModelFamily(
            str(row["family"]), re.compile(str(row["pattern"]), re.IGNORECASE), tuple(row["tokenizers"])
        )
        for row in rows
    )


def family_of(value: str) -> ModelFamily | None:
    """The first family whose pattern occurs in ``value``, or None."""
    return next((family for family in model_families() if family.pattern.search(value)), None)


def contradictions(hints: list[Hint], verdict: str) -> list[dict[str, Any]]:
    """Every hint whose family disagrees with a named tokenizer verdict (none when it is unknown)."""
    if verdict == UNKNOWN:
        return []
    found = []
    for hint in hints:
        family = family_of(hint.value)
        if family is None or family.consistent_with(verdict):
            continue
        found.append(
            {
                "hint": hint.to_dict(),
                "hint_family": family.family,
                "tokenizer_verdict": verdict,
                "message": (
                    f"{hint.field} {hint.value[:120]!r} (from {hint.source}) points to the "
                    f"{family.family} family, but the token counts say '{verdict}'"
                ),
            }
        )
    return found
