"""The facade for the lineage zoo: small CPU-trained models and their derivatives, with a manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


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
    from modeltrace import zoo  # torch is optional: imported only when a zoo is built

    return zoo.build_zoo(directory, quick=quick, seed=seed, threads=threads, progress=progress)


def load_zoo_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a built zoo (``zoo.json``), version-checked."""
    from modeltrace import zoo

    return zoo.load_manifest(directory)
