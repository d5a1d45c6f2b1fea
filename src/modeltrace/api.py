"""The public Python API of modeltrace: one facade over every layer.

The CLI and the service call only this module (and :mod:`modeltrace.errors`). Each section below
belongs to one layer; functions here validate inputs, open files through ``formats`` and hand
values in memory to the pure layers (fingerprint, lineage, licences).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import modeltrace


def version() -> str:
    """The installed modeltrace version."""
    return modeltrace.__version__


# --- zoo -------------------------------------------------------------------------------------------


def build_zoo(
    directory: str | Path,
    quick: bool = False,
    seed: int = 0,
    threads: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Build the lineage zoo (small CPU-trained models and their derivatives) in ``directory``.

    Returns the path of the manifest ``zoo.json``. Needs the ``torch`` extra. ``progress`` is
    called with (model name, models done, models in total) before each model and at the end.
    """
    from modeltrace import zoo

    return zoo.build_zoo(directory, quick=quick, seed=seed, threads=threads, progress=progress)


def load_zoo_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a built zoo (``zoo.json``), version-checked."""
    from modeltrace import zoo

    return zoo.load_manifest(directory)
