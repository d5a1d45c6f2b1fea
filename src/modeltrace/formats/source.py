"""What ``open_model`` returns: the weights (if any) plus everything a model folder says about itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from modeltrace.formats.base import TensorReader
from modeltrace.types import Declared


@dataclass
class ModelSource:
    """A model as found on disk.

    ``format`` is the weight format (``safetensors``, ``pytorch``, ``gguf``, ``onnx``) or ``config``
    when only a config.json was given. ``weights`` is None for config-only sources.
    """

    path: Path
    format: str
    weights: TensorReader | None = None
    config: dict[str, Any] | None = None
    generation_config: dict[str, Any] | None = None
    declared: Declared = field(default_factory=Declared)
    card: dict[str, Any] = field(default_factory=dict)
    tokenizer_files: dict[str, Path] = field(default_factory=dict)
    #: Where the model really is when it was opened from a URL (``https://...``, ``hf://...``);
    #: ``path`` is then a local mirror of its small files. None for local models.
    location: str | None = None
    #: Requests and bytes transferred for a remote model (a ``TransferStats``); None when local.
    transfer: Any = None
    _cleanup: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return self.path.name if self.path.name not in ("config.json",) else self.path.parent.name

    @property
    def display(self) -> str:
        """What to call the model in reports: its URL when remote, else its path."""
        return self.location or str(self.path)

    def close(self) -> None:
        if self.weights is not None:
            self.weights.close()
        while self._cleanup:
            self._cleanup.pop()()

    def __enter__(self) -> ModelSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
