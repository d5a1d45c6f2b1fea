"""The facade for facts about modeltrace itself (cheap: ``modeltrace --version`` loads nothing else)."""

from __future__ import annotations

import modeltrace


def version() -> str:
    """The installed modeltrace version."""
    return modeltrace.__version__
