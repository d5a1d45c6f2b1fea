"""Hugging Face-style model folders: config.json, generation config, tokenizer files, model card.

The model card's YAML front-matter (``base_model``, ``base_model_relation``, ``license``,
``datasets``) is what the model *declares* about its lineage; modeltrace reports it as a claim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modeltrace.errors import CorruptFileError, ResourceLimitError
from modeltrace.formats._json import load_json_file
from modeltrace.types import Declared

#: Largest model card read; front-matter beyond this is not metadata.
MAX_CARD_BYTES = 4 * 1024 * 1024
MAX_FRONT_MATTER_BYTES = 256 * 1024

TOKENIZER_FILE_NAMES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "tiktoken.model",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "special_tokens_map.json",
)


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(item) for item in value if item is not None)
    return (str(value),)


def parse_front_matter(text: str, path: Path) -> dict[str, Any]:
    """The YAML block between the leading ``---`` lines of a model card, or {} when absent."""
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    block = text[3:end]
    if len(block.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise ResourceLimitError(path, f"model card front-matter is over {MAX_FRONT_MATTER_BYTES:,} bytes")
    # Anchors/aliases are how YAML "billion laughs" bombs multiply; model cards never need them.
    try:
        events = list(yaml.parse(block, Loader=yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError) as error:
        raise CorruptFileError(path, f"model card front-matter is not valid YAML ({error})") from error
    if any(isinstance(event, yaml.AliasEvent) for event in events):
        raise CorruptFileError(path, "model card front-matter uses YAML aliases, which are not accepted")
    depth = max_depth = 0
    for event in events:
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            max_depth = max(max_depth, depth)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    if max_depth > 32:
        raise ResourceLimitError(path, "model card front-matter nests too deeply")
    data = yaml.safe_load(block)
    return data if isinstance(data, dict) else {}


def declared_from_card(front_matter: dict[str, Any], source: str) -> Declared:
    license_id = front_matter.get("license")
    return Declared(
        base_models=_as_tuple(front_matter.get("base_model")),
        base_model_relation=(
            str(front_matter["base_model_relation"]) if front_matter.get("base_model_relation") else None
        ),
        license=str(license_id) if license_id is not None else None,
        license_name=str(front_matter["license_name"]) if front_matter.get("license_name") else None,
        datasets=_as_tuple(front_matter.get("datasets")),
        name=str(front_matter["model_name"]) if front_matter.get("model_name") else None,
        source=source,
    )


def read_card(folder: Path) -> tuple[dict[str, Any], Declared]:
    """Front-matter and declared lineage of ``folder/README.md`` (empty when there is no card)."""
    card = folder / "README.md"
    if not card.is_file():
        return {}, Declared()
    size = card.stat().st_size
    if size > MAX_CARD_BYTES:
        raise ResourceLimitError(card, f"model card is {size:,} bytes, over {MAX_CARD_BYTES:,}")
    text = card.read_bytes().decode("utf-8", errors="replace")
    front_matter = parse_front_matter(text, card)
    return front_matter, declared_from_card(front_matter, "README.md front-matter")


def read_json_if_present(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = load_json_file(path)
    if not isinstance(data, dict):
        raise CorruptFileError(path, "expected a JSON object")
    return data


def tokenizer_files(folder: Path) -> dict[str, Path]:
    """Tokenizer files present in the folder, by file name."""
    found = {name: folder / name for name in TOKENIZER_FILE_NAMES if (folder / name).is_file()}
    found.update({path.name: path for path in folder.glob("*.tiktoken") if path.is_file()})
    return found
