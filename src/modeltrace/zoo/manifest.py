"""``zoo.json``: what the zoo holds and the answer key of every pair the benchmark asks about.

The manifest is plain JSON (documented in docs/zoo.md)::

    {"version": 1, "build": {...},
     "models": [{"name", "path", "format", "architecture", "seed", "parents", "transform",
                 "function_preserving", "layer_map", "teacher", "metrics", "seconds"}],
     "pairs":  [{"suspect", "base", "expected", "relation", "layer_map", "suspect_path", "base_path"}]}

``expected`` is ``same-weights`` (a model against itself), ``related`` (the suspect descends
from the base by the transforms named in ``relation``, joined by ``+``) or ``unrelated``
(independent initialisations; ``relation`` is ``independent`` or ``distilled``). ``layer_map``
maps each suspect layer to the base layer it came from, only when a layer transform is involved.
``suspect_path``/``base_path`` repeat the models' paths (relative to the zoo folder) for convenience.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeltrace.errors import ZooError

MANIFEST_NAME = "zoo.json"
MANIFEST_VERSION = 1

LayerMap = dict[int, int]


@dataclass
class ModelRecord:
    name: str
    path: str  # relative to the zoo folder, POSIX separators
    format: str  # safetensors | gguf | onnx
    architecture: str  # config.json model_type: llama | mixtral | gpt2
    seed: int  # the seed of the random initialisation this model's weights descend from
    parents: list[str]
    transform: str
    function_preserving: bool
    layer_map: LayerMap | None = None  # {own layer: parent layer}, only for layer transforms
    teacher: str | None = None  # distillation: whose outputs it was trained on (not a weight parent)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "format": self.format,
            "architecture": self.architecture,
            "seed": self.seed,
            "parents": list(self.parents),
            "transform": self.transform,
            "function_preserving": self.function_preserving,
            "layer_map": _layer_map_json(self.layer_map),
            "teacher": self.teacher,
            "metrics": self.metrics,
            "seconds": round(self.seconds, 2),
        }


def _layer_map_json(layer_map: LayerMap | None) -> dict[str, int] | None:
    return None if layer_map is None else {str(key): value for key, value in sorted(layer_map.items())}


def _compose(child_to_parent: LayerMap | None, parent_to_base: LayerMap | None) -> LayerMap | None:
    """Layer map of child -> base through the parent; ``None`` stands for the identity."""
    if child_to_parent is None:
        return parent_to_base
    if parent_to_base is None:
        return child_to_parent
    return {child: parent_to_base[parent] for child, parent in child_to_parent.items()}


def ancestors(records: dict[str, ModelRecord], name: str) -> dict[str, tuple[list[str], LayerMap | None]]:
    """Every weight ancestor of ``name`` with the transforms on the path (oldest first) and the
    composed layer map; the shortest path wins when a merge reaches an ancestor twice."""
    found: dict[str, tuple[list[str], LayerMap | None]] = {}
    queue: deque[tuple[str, list[str], LayerMap | None]] = deque([(name, [], None)])
    while queue:
        current, chain, layer_map = queue.popleft()
        record = records[current]
        chain = [record.transform, *chain]
        layer_map = _compose(layer_map, record.layer_map)
        for parent in record.parents:
            if parent not in found:
                found[parent] = (chain, layer_map)
                queue.append((parent, chain, layer_map))
    return found


def _pair(
    suspect: ModelRecord, base: ModelRecord, expected: str, relation: str, layer_map: LayerMap | None = None
) -> dict[str, Any]:
    return {
        "suspect": suspect.name,
        "base": base.name,
        "expected": expected,
        "relation": relation,
        "layer_map": _layer_map_json(layer_map),
        "suspect_path": suspect.path,
        "base_path": base.path,
    }


def lineage_pairs(models: list[ModelRecord]) -> list[dict[str, Any]]:
    """The benchmark's questions and answers (see the module docstring)."""
    records = {record.name: record for record in models}
    roots = [record for record in models if not record.parents]
    pairs: list[dict[str, Any]] = []
    for record in roots:
        pairs.append(_pair(record, record, "same-weights", "identical"))
    for fmt in ("gguf", "onnx"):
        first = next((record for record in models if record.format == fmt), None)
        if first is not None:
            pairs.append(_pair(first, first, "same-weights", "identical"))
    for record in models:
        if not record.parents:
            continue
        lineage = ancestors(records, record.name)
        for ancestor, (chain, layer_map) in lineage.items():
            pairs.append(_pair(record, records[ancestor], "related", "+".join(chain), layer_map))
        own_root = next(records[name] for name in lineage if not records[name].parents)
        for root in roots:
            if root.name not in lineage and root.architecture == own_root.architecture:
                pairs.append(_pair(record, root, "unrelated", "independent"))
    for earlier, later in itertools.combinations(roots, 2):
        distilled = later.teacher == earlier.name or earlier.teacher == later.name
        pairs.append(_pair(later, earlier, "unrelated", "distilled" if distilled else "independent"))
    return pairs


def manifest_json(models: list[ModelRecord], build: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": MANIFEST_VERSION,
        "build": build,
        "models": [record.as_json() for record in models],
        "pairs": lineage_pairs(models),
    }


def read_manifest(path: Path) -> dict[str, Any]:
    """``zoo.json`` of a zoo folder (or the file itself), checked for its version."""
    file = path / MANIFEST_NAME if path.is_dir() else path
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ZooError(
            f"cannot read zoo manifest '{file}' ({error}); build one with `modeltrace zoo build`"
        ) from error
    check_version(manifest, file)
    return manifest


def check_version(manifest: Any, file: Path) -> None:
    """Raise unless ``manifest`` (parsed ``zoo.json``) is of the version this modeltrace writes and reads."""
    if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION:
        found = manifest.get("version") if isinstance(manifest, dict) else None
        raise ZooError(
            f"zoo manifest '{file}' has version {found!r}; this modeltrace reads version {MANIFEST_VERSION}"
            " (rebuild the zoo with `modeltrace zoo build`)"
        )
