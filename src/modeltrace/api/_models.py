"""The facade for inspecting models: the L1 architecture card and the demo zoo."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from modeltrace.formats import open_model
from modeltrace.formats.symlinks import SymlinkPolicy
from modeltrace.formats.symlinks import symlink_policy as _symlink_policy
from modeltrace.inspect.describe import describe
from modeltrace.inspect.layouts import config_tensor_shapes
from modeltrace.paths import modeltrace_home
from modeltrace.zoo import demo as demo_zoo


@contextlib.contextmanager
def symlink_policy(policy: SymlinkPolicy) -> Iterator[None]:
    """Inside the block, symlinks leaving a model folder are followed per ``policy``: ``"never"``
    (the service), ``"hf-cache"`` (default: only into the enclosing Hugging Face cache's
    ``blobs/``) or ``"always"`` (``--follow-symlinks``). See docs/formats.md."""
    with _symlink_policy(policy):
        yield


def inspect(path: str | Path, format: str | None = None) -> dict[str, Any]:
    """The architecture card of a model folder, weight file or bare config.json, as a JSON-ready dict.

    Parameters are counted from the tensors when weights are present (config.json's count is added
    as ``config_total_params``) and from config.json alone otherwise. Keys other tools rely on:
    ``format``, ``total_params``, ``active_params``, ``activation_rate``, ``layers``,
    ``hidden_size``, ``vocab_size``, ``experts``, ``declared``; see docs/inspect.md for the rest.
    """
    with open_model(path, format) as source:
        card = describe(source)
        result = {
            "path": source.display,
            "name": source.name,
            "format": source.format,
            **card,
            "declared": source.declared.as_dict(),
            "tokenizer_files": sorted(source.tokenizer_files),
            "unsafe_pickle": source.weights.unsafe_pickle if source.weights is not None else False,
            "warnings": list(source.weights.warnings) if source.weights is not None else [],
        }
        if source.transfer is not None:  # a URL: what reading it cost
            result["transfer"] = source.transfer.report()
        return result


def build_demo_zoo(home: Path | None = None) -> Path:
    """Generate the demo models under ``<home>/demo-zoo`` (home defaults to MODELTRACE_HOME)."""
    return demo_zoo.build((home if home is not None else modeltrace_home()) / "demo-zoo", _card_layout)


def _card_layout(config: Mapping[str, Any]) -> Mapping[str, tuple[int, ...]] | None:
    """The tensors the architecture card expects of ``config``: the demo models hold exactly these."""
    laid_out = config_tensor_shapes(config)
    return None if laid_out is None else laid_out[0]


def demo_zoo_members(zoo: Path) -> list[Path]:
    """The model paths of a built demo zoo, in name order."""
    return demo_zoo.members(zoo)
