"""Scan test helpers: tiny synthetic models with known lineage (tests/lineage/synthetic.py) and a
Hugging Face-like endpoint over the range server of tests/formats (resolve URLs that name their
commit in ``X-Repo-Commit``, as the Hub does)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tests.formats.range_server import Faults, _handler, serving
from tests.lineage.synthetic import fine_tune, make_params, write_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def write_models(folder: Path, cards: dict[str, str] | None = None) -> dict[str, Path]:
    """``base``, ``child`` (fine-tuned from base) and ``stranger`` (independent); ``cards`` adds a
    README.md model card (its YAML front matter declares bases) to the named models."""
    base = make_params(1)
    params = {"base": base, "child": fine_tune(base, np.random.default_rng(11)), "stranger": make_params(2)}
    models = {name: write_model(folder / name, values) for name, values in params.items()}
    for name, card in (cards or {}).items():
        (models[name] / "README.md").write_text(card, encoding="utf-8")
    return models


@contextmanager
def serve_hub(root: Path, repos: dict[str, Path]) -> Iterator[tuple[str, Faults]]:
    """A Hub-like endpoint: ``/ORG/REPO/resolve/{main,COMMIT}/FILE`` serves each repo's folder with
    byte ranges and answers with ``X-Repo-Commit: COMMIT``. Yields its URL (for ``HF_ENDPOINT``)."""
    for repo, folder in repos.items():
        for revision in ("main", COMMIT):
            shutil.copytree(folder, root / repo / "resolve" / revision)
    faults = Faults()

    class HubHandler(_handler(root, faults)):  # type: ignore[misc]
        def end_headers(self) -> None:
            self.send_header("X-Repo-Commit", COMMIT)
            super().end_headers()

        def do_HEAD(self) -> None:  # noqa: N802  (what huggingface_hub's metadata call sends)
            target = (root / self.path.lstrip("/").split("?")[0]).resolve()
            self.send_response(200 if target.is_file() else 404)
            self.send_header("Content-Length", str(target.stat().st_size if target.is_file() else 0))
            self.send_header("ETag", '"fake"')
            self.end_headers()

    with serving(HubHandler) as url:
        yield url, faults
