"""``build_zoo``: train the zoo's bases, derive every child, write the files and ``zoo.json``.

The zoo is a list of recipes run in order (bases first, then children that read their parents'
weights from memory; :mod:`modeltrace.zoo.recipes`). Each recipe returns one model;
:class:`~modeltrace.zoo.writer.ZooWriter` puts it on disk in its format and records it for the
manifest. The plan types both sides share live in :mod:`modeltrace.zoo.plan`. ``quick`` trains
fewer steps and fewer bases, but keeps every transform.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from modeltrace.errors import ZooError
from modeltrace.zoo._torch import require_torch
from modeltrace.zoo.corpus import generate_tokens, make_lexicon
from modeltrace.zoo.files import write_json
from modeltrace.zoo.manifest import MANIFEST_NAME, manifest_json
from modeltrace.zoo.plan import Corpora, ZooPlan
from modeltrace.zoo.writer import ZooWriter

#: Called before each model with (model name, models done, models in total), and once at the end.
ProgressCallback = Callable[[str, int, int], None]


def _prepare_directory(directory: Path) -> None:
    """Create ``directory``, or clear a previous zoo in it; never touch a folder of other files."""
    if directory.exists() and not directory.is_dir():
        raise ZooError(f"zoo folder '{directory}' is a file; choose a folder path")
    if directory.is_dir() and any(directory.iterdir()):
        if not (directory / MANIFEST_NAME).is_file():
            raise ZooError(
                f"zoo folder '{directory}' is not empty and holds no {MANIFEST_NAME}; "
                "choose an empty or new folder (modeltrace only overwrites a previous zoo)"
            )
        shutil.rmtree(directory / "models", ignore_errors=True)
        (directory / MANIFEST_NAME).unlink()
    (directory / "models").mkdir(parents=True, exist_ok=True)


def build_zoo(
    directory: str | Path,
    quick: bool = False,
    seed: int = 0,
    threads: int = 2,
    progress: ProgressCallback | None = None,
) -> Path:
    """Build the lineage zoo in ``directory``; returns the path of its ``zoo.json``."""
    require_torch()  # a clear error first: the recipes and training import torch
    from modeltrace.zoo.recipes import recipes
    from modeltrace.zoo.train import reproducible_torch

    root = Path(directory).expanduser()
    _prepare_directory(root)
    plan = ZooPlan.for_mode(quick, seed)
    lexicon = make_lexicon(seed)
    corpora = Corpora(
        lexicon=lexicon,
        base=generate_tokens(lexicon, plan.corpus_tokens, seed),
        domain=generate_tokens(lexicon, plan.domain_tokens, seed, domain=True),
        held_out=generate_tokens(lexicon, 20_000, seed + 10_000),
        held_out_domain=generate_tokens(lexicon, 20_000, seed + 10_000, domain=True),
    )
    writer = ZooWriter(root)
    steps = recipes(plan, corpora, writer)
    started = time.perf_counter()
    with reproducible_torch(threads):
        for index, (name, recipe) in enumerate(steps):
            if progress is not None:
                progress(name, index, len(steps))
            begin = time.perf_counter()
            record = recipe()
            record.seconds = time.perf_counter() - begin
    if progress is not None:
        progress("done", len(steps), len(steps))
    build = {
        "quick": quick,
        "seed": seed,
        "threads": threads,
        "seconds": round(time.perf_counter() - started, 1),
        "corpus_tokens": len(corpora.base),
        "domain_tokens": len(corpora.domain),
        "vocab_size": len(lexicon.vocab),
    }
    return write_json(root / MANIFEST_NAME, manifest_json(writer.records, build))
