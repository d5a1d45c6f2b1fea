"""Defensive JSON loading for headers and metadata files read from untrusted models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modeltrace.errors import CorruptFileError, ResourceLimitError
from modeltrace.formats import limits


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
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise CorruptFileError(path, f"{what} is not valid JSON ({error})") from error


def load_json_file(path: str | Path, what: str | None = None) -> Any:
    """Read a small JSON file (config.json, index.json ...) defensively."""
    file_path = Path(path)
    try:
        size = file_path.stat().st_size
        if size > limits.MAX_HEADER_BYTES:
            raise ResourceLimitError(file_path, f"file is {size:,} bytes, too large for a JSON metadata file")
        data = file_path.read_bytes()
    except OSError as error:
        raise CorruptFileError(file_path, f"cannot read file ({error.strerror})") from error
    return parse_json_bytes(data, file_path, what or "JSON")
