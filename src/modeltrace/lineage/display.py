"""How a p-value reads for people, in one place for the CLI and the registry's web pages.

The engine keeps p-values as ``log10_p`` because the exact tests reach far below the smallest
float (``1e-856`` is common for a fine-tune); shown as a plain number such a p-value would read 0.
"""

from __future__ import annotations

import math

#: Below this log10 a p-value underflows a float's 3-digit display; it is shown as ``1eN`` instead.
_SMALLEST_PLAIN_LOG10 = -300


def format_p_value(log10_p: float | None) -> str:
    """``0.0123``, or ``1e-856`` below float range; ``n/a`` when there is no p-value (None or NaN)."""
    if log10_p is None or math.isnan(log10_p):
        return "n/a"
    return f"{10**log10_p:.3g}" if log10_p > _SMALLEST_PLAIN_LOG10 else f"1e{log10_p:.0f}"
