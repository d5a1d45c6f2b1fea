"""Where modeltrace keeps state. Read from the environment when called, never at import."""

from __future__ import annotations

import os
from pathlib import Path


def modeltrace_home() -> Path:
    """The state folder: ``$MODELTRACE_HOME`` or ``~/.modeltrace``. Not created here."""
    configured = os.environ.get("MODELTRACE_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".modeltrace"
