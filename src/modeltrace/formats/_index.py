"""Sharded checkpoints: the ``*.index.json`` that maps tensor names to shard files in one folder."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from modeltrace.errors import CorruptFileError, ResourceLimitError
from modeltrace.formats import limits
from modeltrace.formats._json import load_json_file
from modeltrace.formats.symlinks import check_symlink


def shard_names_from_index(index_path: Path, what: str) -> tuple[list[PurePosixPath], Any]:
    """The shard names an index lists (sorted, each once, validated) and the index itself.

    Shard names must be plain relative names inside the index's folder: a hostile index must not
    make the reader open ``../../etc/passwd`` or an absolute path.
    """
    index = load_json_file(index_path, what)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise CorruptFileError(index_path, "index has no 'weight_map' object")
    shard_names = sorted({str(value) for value in weight_map.values()})
    if len(shard_names) > limits.MAX_SHARDS:
        raise ResourceLimitError(index_path, f"index names {len(shard_names):,} shards")
    names: list[PurePosixPath] = []
    for shard_name in shard_names:
        relative = PurePosixPath(shard_name)
        if not shard_name or relative.is_absolute() or ".." in relative.parts or "\\" in shard_name:
            raise CorruptFileError(
                index_path, f"shard name {shard_name[:80]!r} points outside the model folder"
            )
        names.append(relative)
    return names, index


def shard_paths_from_index(index_path: Path, what: str) -> tuple[list[Path], dict[str, str]]:
    """The shard files an index names (sorted, each once) and its ``metadata`` as ``index.*`` strings."""
    names, index = shard_names_from_index(index_path, what)
    folder = index_path.parent
    shards: list[Path] = []
    for relative in names:
        shard_name = str(relative)
        shard = folder / relative
        check_symlink(shard, folder)
        if not shard.is_file():
            raise CorruptFileError(index_path, f"shard '{shard_name[:80]}' named in the index is missing")
        shards.append(shard)
    metadata = index.get("metadata")
    extra = (
        {f"index.{key}": str(value)[:200] for key, value in metadata.items()}
        if isinstance(metadata, dict)
        else {}
    )
    return shards, extra
