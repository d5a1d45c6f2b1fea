"""Hugging Face-style model folders: config.json, generation config, tokenizer files, model card.

The model card's YAML front-matter (``base_model``, ``base_model_relation``, ``license``,
``datasets``) is what the model *declares* about its lineage; modeltrace reports it as a claim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import yaml

from modeltrace.errors import CorruptFileError, ResourceLimitError
from modeltrace.formats import limits
from modeltrace.formats._json import load_json_file
from modeltrace.formats.base import read_regular_file
from modeltrace.types import Declared

#: Largest model card read; front-matter beyond this is not metadata.
MAX_CARD_BYTES = 4 * 1024 * 1024
MAX_FRONT_MATTER_BYTES = 256 * 1024
CARD_FILE_NAME = "README.md"

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


_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "str", "seq", "map")
)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _bounded(construct: Any) -> Any:
    """Wrap a scalar constructor: refuse huge numbers before int()/float() (quadratic, and a
    ValueError past 4,300 digits) and turn a conversion failure into a YAML error."""

    def constructor(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode) and len(node.value) > limits.MAX_JSON_NUMBER_CHARS:
            raise yaml.constructor.ConstructorError(None, None, "number too long", node.start_mark)
        try:
            return construct(loader, node)
        except (ValueError, OverflowError) as error:
            raise yaml.constructor.ConstructorError(None, None, str(error), node.start_mark) from error

    return constructor


class PlainLoader(yaml.SafeLoader):
    """A YAML loader that builds only plain values: strings, numbers, booleans, null, lists and
    mappings. Dates stay strings; ``!!python/...``, ``!!binary``, ``!!set``, ``!!timestamp`` and
    every other tag are errors, so nothing a card says can construct an object or fail inside a
    constructor with a builtin exception."""

    yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    yaml_constructors: ClassVar[dict[Any, Any]] = {
        tag: (_bounded(construct) if tag.endswith((":int", ":float")) else construct)
        for tag, construct in yaml.SafeLoader.yaml_constructors.items()
        if tag in _PLAIN_TAGS
    } | {None: yaml.constructor.SafeConstructor.construct_undefined}  # any other tag: an error
    yaml_multi_constructors: ClassVar[dict[Any, Any]] = {}


def parse_front_matter(text: str, path: Path, *, strict: bool = False) -> dict[str, Any]:
    """The YAML block between the leading ``---`` lines of a model card, or {} when absent.

    ``strict`` (the licence check) refuses a block that is opened but never closed, or that is
    not a mapping, instead of reading it as "no metadata": a licence must not vanish silently.
    """
    text = text.removeprefix("\ufeff")  # a byte-order mark is not content
    first_line, _, _ = text.partition("\n")
    if first_line.rstrip() != "---":
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        if strict:
            raise CorruptFileError(
                path,
                f"model card front-matter opened with '---' is never closed "
                f"within the first {MAX_CARD_BYTES:,} bytes",
            )
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
    try:
        data = yaml.load(block, Loader=PlainLoader)  # PlainLoader: plain values only
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as error:
        raise CorruptFileError(path, f"model card front-matter is not plain YAML ({error})") from error
    if strict and data is not None and not isinstance(data, dict):
        raise CorruptFileError(path, "model card front-matter is not a mapping")
    return data if isinstance(data, dict) else {}


def _first_license(value: Any) -> str | None:
    """The card's own licence: some cards list several, and the first is the model's."""
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value is not None else None


def declared_from_card(front_matter: dict[str, Any], source: str) -> Declared:
    return Declared(
        base_models=_as_tuple(front_matter.get("base_model")),
        base_model_relation=(
            str(front_matter["base_model_relation"]) if front_matter.get("base_model_relation") else None
        ),
        license=_first_license(front_matter.get("license")),
        license_name=str(front_matter["license_name"]) if front_matter.get("license_name") else None,
        datasets=_as_tuple(front_matter.get("datasets")),
        name=str(front_matter["model_name"]) if front_matter.get("model_name") else None,
        source=source,
    )


def read_card_file(card: Path, *, strict: bool = False) -> tuple[dict[str, Any], Declared]:
    """Front-matter and declared lineage of one model card file (see :func:`parse_front_matter`)."""
    text = read_regular_file(card, MAX_CARD_BYTES).decode("utf-8", errors="replace")
    front_matter = parse_front_matter(text, card, strict=strict)
    return front_matter, declared_from_card(front_matter, f"{card.name} front-matter")


def read_card(folder: Path) -> tuple[dict[str, Any], Declared]:
    """Front-matter and declared lineage of ``folder/README.md`` (empty when there is no card)."""
    card = folder / CARD_FILE_NAME
    if not card.is_file():
        return {}, Declared()
    return read_card_file(card)


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
