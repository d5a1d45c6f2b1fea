"""The significance level of a lineage verdict, and the multiple-testing correction shared by the
lineage engine and the behavioural probe.

Standard library only, beside ``types.py`` and ``errors.py`` at the bottom of the layers: every
package may import it (lineage's ``identify`` and the registry rank candidate bases with Holm, probe's
behavioural test ranks reference models), and the CLI reads ``DEFAULT_ALPHA`` for its option
defaults without loading numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import overload

#: Significance level of a lineage verdict (compare, identify, the registry, the zoo) unless the caller
#: gives one. The behavioural probe has its own (``probe.behaviour.DEFAULT_ALPHA``, 0.05).
DEFAULT_ALPHA = 0.01


@overload
def holm(p_values: Sequence[float], *, log: bool = False) -> list[float]: ...
@overload
def holm(p_values: Sequence[float | None], *, log: bool = False) -> list[float | None]: ...
def holm(p_values: Sequence[float | None], *, log: bool = False) -> list[float | None]:
    """Holm's step-down adjusted p-values, in input order: the i-th smallest of m is multiplied by
    m - i + 1, made monotone and capped at 1. Controls the family-wise error rate under any dependence
    between the tests. ``log``: the values are natural-log p-values (so that p = 1e-100000 survives)
    and so is the answer. None (a test that could not run) stays None and is not counted in m. Ties
    keep input order."""
    present = sorted((value, index) for index, value in enumerate(p_values) if value is not None)
    count = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = -math.inf if log else 0.0
    for rank, (value, index) in enumerate(present):
        scaled = min(0.0, value + math.log(count - rank)) if log else min(1.0, (count - rank) * value)
        running = max(running, scaled)
        adjusted[index] = running
    return adjusted
