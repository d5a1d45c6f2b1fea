"""The non-text towers of multimodal wrappers (vision, audio), reported apart from the language model.

A multimodal config nests its language model in ``text_config`` and each tower in its own
``*_config`` (Kimi K2.5: ``vision_config`` with ``vt_hidden_size``, ``vt_num_hidden_layers`` ...).
The card counts the language model as usual and lists each tower separately: its sizes from the
config, and its parameters from the weights when they are present (tensors under the tower's
prefix). A tower's layout is defined by the model's own code, so without weights its parameter
count is left unknown rather than estimated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modeltrace.inspect import config_keys
from modeltrace.types import TensorInfo

#: Tensor-name prefixes of non-text towers and their projectors, by tower kind.
_TOWER_PREFIX = re.compile(
    r"^(?:model\.)?(?P<kind>vision_tower|vision_model|visual|vit|mm_projector|multi_modal_projector"
    r"|audio_tower|audio_model|audio_encoder|speech_encoder)\."
)
_KIND = {"vision_tower": "vision", "vision_model": "vision", "visual": "vision", "vit": "vision",
         "mm_projector": "vision", "multi_modal_projector": "vision", "audio_tower": "audio",
         "audio_model": "audio", "audio_encoder": "audio", "speech_encoder": "audio"}  # fmt: skip


@dataclass(frozen=True)
class Tower:
    kind: str  # "vision" or "audio"
    model_type: str | None
    layers: int | None
    hidden_size: int | None
    params: int | None  # from the weights; None without them
    tensors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_type": self.model_type, "layers": self.layers,
                "hidden_size": self.hidden_size, "params": self.params, "tensors": self.tensors}  # fmt: skip


def _first_int(config: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def towers_from_config(config: Mapping[str, Any] | None) -> dict[str, Tower]:
    """Each ``vision_config`` / ``audio_config`` of a wrapper that nests its language model."""
    if not config or not isinstance(config.get("text_config"), dict):
        return {}
    found: dict[str, Tower] = {}
    for kind in ("vision", "audio"):
        sub = config.get(f"{kind}_config")
        if not isinstance(sub, dict):
            continue
        model_type = sub.get("model_type")
        found[kind] = Tower(
            kind=kind,
            model_type=model_type if isinstance(model_type, str) else None,
            layers=_first_int(sub, *config_keys.TOWER_LAYERS),
            hidden_size=_first_int(sub, *config_keys.TOWER_HIDDEN),
            params=None,
        )  # fmt: skip
    return found


def tower_of(name: str) -> str | None:
    """``vision`` or ``audio`` for a tensor of a non-text tower, else None."""
    match = _TOWER_PREFIX.match(name)
    return _KIND[match.group("kind")] if match else None


def split_towers(tensors: Iterable[TensorInfo]) -> tuple[list[TensorInfo], dict[str, list[TensorInfo]]]:
    """The language model's tensors, and each tower's."""
    text: list[TensorInfo] = []
    towers: dict[str, list[TensorInfo]] = {}
    for info in tensors:
        kind = tower_of(info.name)
        if kind is None:
            text.append(info)
        else:
            towers.setdefault(kind, []).append(info)
    return text, towers


def merge_towers(from_config: dict[str, Tower], params: dict[str, tuple[int, int]]) -> tuple[Tower, ...]:
    """Config sizes plus weight counts (``kind -> (parameters, tensors)``), towers found either way."""
    merged = []
    for kind in sorted(set(from_config) | set(params)):
        base = from_config.get(kind, Tower(kind, None, None, None, None))
        counted, tensors = params.get(kind, (None, 0))
        merged.append(Tower(base.kind, base.model_type, base.layers, base.hidden_size, counted, tensors))
    return tuple(merged)
