"""Defensive JSON loading for headers and metadata files read from untrusted models."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modeltrace.errors import CorruptFileError, FormatError, ResourceLimitError
from modeltrace.formats import limits
from modeltrace.formats.base import read_regular_file


def _nesting_depth_exceeds(text: str, limit: int) -> bool:
    """Cheap bracket scan (ignoring string contents) so json.loads never recurses past ``limit``."""
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _number_parsers(path: str | Path, what: str) -> dict[str, Callable[[str], Any]]:
    """``json.loads`` hooks that refuse numbers longer than any header needs, before converting:
    Python's int() is quadratic in the digit count and raises ValueError past 4,300 digits."""

    def too_long(text: str) -> CorruptFileError:
        return CorruptFileError(
            path,
            f"{what} holds a number of {len(text):,} characters ({text[:20]}...), over the "
            f"{limits.MAX_JSON_NUMBER_CHARS}-character limit",
        )

    def parse_int(text: str) -> int:
        if len(text) > limits.MAX_JSON_NUMBER_CHARS:
            raise too_long(text)
        return int(text)

    def parse_float(text: str) -> float:
        if len(text) > limits.MAX_JSON_NUMBER_CHARS:
            raise too_long(text)
        return float(text)

    return {"parse_int": parse_int, "parse_float": parse_float}


def parse_json_bytes(data: bytes, path: str | Path, what: str) -> Any:
    """Decode UTF-8 JSON with depth and size limits; every failure is a FormatError naming ``path``."""
    if len(data) > limits.MAX_HEADER_BYTES:
        raise ResourceLimitError(
            path, f"{what} is {len(data):,} bytes, over the {limits.MAX_HEADER_BYTES:,}-byte limit"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorruptFileError(path, f"{what} is not valid UTF-8 (byte {error.start})") from error
    if _nesting_depth_exceeds(text, limits.MAX_NESTING_DEPTH):
        raise ResourceLimitError(path, f"{what} nests deeper than {limits.MAX_NESTING_DEPTH} levels")
    try:
        return json.loads(text, **_number_parsers(path, what))
    except FormatError:
        raise
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise CorruptFileError(path, f"{what} is not valid JSON ({error})") from error


def load_json_file(path: str | Path, what: str | None = None) -> Any:
    """Read a small JSON file (config.json, index.json ...) defensively."""
    file_path = Path(path)
    data = read_regular_file(file_path, limits.MAX_HEADER_BYTES)
    return parse_json_bytes(data, file_path, what or "JSON")
