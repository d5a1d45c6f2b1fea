"""Read a lineage file from disk, and complete a model's declared ancestry with one.

A lineage file (YAML or JSON) is the licence check's own input format: a nested tree ``{name,
license, parents: [{name, license, relation, parents}]}``. Inputs are treated as hostile:
size-limited reads, ``yaml.safe_load`` only, clear :class:`LicenseError` messages.

Model cards and provenance labels are not read here: the facade
(:mod:`modeltrace.api._license_sources`) reads them with the readers that own those files
(``formats``, ``label``) and hands this package a :class:`~modeltrace.licenses.lineage.LineageNode`
tree, so ``licenses`` imports no reader.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from modeltrace.errors import LicenseError
from modeltrace.licenses.lineage import LineageNode, lineage_from_data

#: Lineage files are small; anything bigger is a mistake or an attack.
MAX_FILE_BYTES = 1 << 20


def _read_text(path: Path, limit: int, what: str) -> str:
    try:
        size = path.stat().st_size
        if size > limit:
            raise LicenseError(
                f"Cannot read {what} '{path}': {size:,} bytes exceeds the {limit:,}-byte limit."
            )
        return path.read_bytes().decode("utf-8")
    except OSError as error:
        raise LicenseError(f"Cannot read {what} '{path}': {error.strerror or error}.") from error
    except UnicodeDecodeError as error:
        raise LicenseError(f"Cannot read {what} '{path}': not UTF-8 text ({error.reason}).") from error


def load_lineage_file(path: str | Path) -> LineageNode:
    """Parse a YAML or JSON lineage file into a tree (LicenseError when it is malformed)."""
    path = Path(path)
    text = _read_text(path, MAX_FILE_BYTES, "lineage file")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise LicenseError(f"Cannot read lineage file '{path}': {error}") from error
    return lineage_from_data(data, source=str(path))


def merge_lineage(model: LineageNode, lineage: LineageNode) -> LineageNode:
    """Complete a card or label's ancestry with a lineage file.

    Each parent the model declares is looked up by name anywhere in the lineage file (names compare
    case-insensitively, and ``org/name`` matches ``name``); a match supplies its licence and its own
    parents. When the lineage file's root is the model itself, its parents are added too.
    """
    index: dict[str, LineageNode] = {}
    for node, _path in lineage.walk():
        for key in _name_keys(node.name):
            index.setdefault(key, node)

    def completed(parent: LineageNode) -> LineageNode:
        match = next((index[key] for key in _name_keys(parent.name) if key in index), None)
        if match is None:
            return parent
        return LineageNode(
            name=parent.name,
            license=parent.license or match.license,
            relation=parent.relation,
            parents=match.parents,
            multimodal=match.multimodal if parent.multimodal is None else parent.multimodal,
        )

    parents = [completed(parent) for parent in model.parents]
    if _name_keys(lineage.name) & _name_keys(model.name) or not model.parents:
        declared = {key for parent in parents for key in _name_keys(parent.name)}
        parents += [parent for parent in lineage.parents if not _name_keys(parent.name) & declared]
    return LineageNode(
        name=model.name,
        license=model.license or lineage.license,
        parents=tuple(parents),
        multimodal=model.multimodal,
        grants=(*model.grants, *(grant for grant in lineage.grants if grant not in model.grants)),
    )


def _name_keys(name: str) -> set[str]:
    lowered = name.strip().lower()
    return {lowered, lowered.rsplit("/", 1)[-1]}
