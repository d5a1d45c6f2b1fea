"""Token strings of a model, by token id, from the tokenizer files of a model folder.

The weight file itself may hold them too (GGUF ``tokenizer.ggml.tokens``, offered by readers that
implement :class:`~modeltrace.formats.capabilities.HasVocabulary`). Files read, in order:
``tokenizer.json`` (BPE/WordPiece/WordLevel ``model.vocab`` mapping or Unigram list), ``vocab.json``
and ``vocab.txt``. Only strings matter: the lineage engine matches tokens of two models by string,
never by id. Files are parsed as data (JSON/text), never executed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modeltrace.errors import CorruptFileError, ResourceLimitError

#: Largest tokenizer file parsed (the biggest real tokenizer.json files are ~30 MB).
MAX_TOKENIZER_BYTES = 256 * 1024 * 1024
#: More ids than this is not a vocabulary.
MAX_VOCAB = 4_000_000


def _from_mapping(mapping: Mapping[str, Any], where: Path) -> list[str]:
    ids = [value for value in mapping.values() if isinstance(value, int) and not isinstance(value, bool)]
    if not ids:
        return []
    size = max(ids) + 1
    if size > MAX_VOCAB or min(ids) < 0:
        raise ResourceLimitError(where, f"token ids run to {size:,}; this is not a vocabulary")
    tokens = [""] * size
    for token, index in mapping.items():
        if isinstance(index, int) and not isinstance(index, bool):
            tokens[index] = str(token)
    return tokens


def _load_json(path: Path) -> Any:
    if path.stat().st_size > MAX_TOKENIZER_BYTES:
        raise ResourceLimitError(path, f"tokenizer file over {MAX_TOKENIZER_BYTES:,} bytes")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError, 5,000-digit ints
        raise CorruptFileError(path, f"not valid JSON ({str(error)[:200]})") from error


def from_tokenizer_json(path: Path) -> list[str]:
    data = _load_json(path)
    model = data.get("model") if isinstance(data, dict) else None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if isinstance(vocab, dict):
        tokens = _from_mapping(vocab, path)
    elif isinstance(vocab, list):  # Unigram: [[piece, score], ...] in id order
        tokens = [str(item[0]) if isinstance(item, list) and item else "" for item in vocab[:MAX_VOCAB]]
    else:
        return []
    for added in data.get("added_tokens") or []:
        if isinstance(added, dict) and isinstance(added.get("id"), int) and 0 <= added["id"] < MAX_VOCAB:
            while len(tokens) <= added["id"]:
                tokens.append("")
            tokens[added["id"]] = str(added.get("content", ""))
    return tokens


def from_files(files: Mapping[str, Path]) -> tuple[list[str] | None, str | None]:
    """``(tokens, file name)`` from a model folder's tokenizer files, or ``(None, None)``."""
    if "tokenizer.json" in files:
        tokens = from_tokenizer_json(files["tokenizer.json"])
        if tokens:
            return tokens, "tokenizer.json"
    if "vocab.json" in files:
        data = _load_json(files["vocab.json"])
        if isinstance(data, dict) and (tokens := _from_mapping(data, files["vocab.json"])):
            return tokens, "vocab.json"
    if "vocab.txt" in files:
        path = files["vocab.txt"]
        if path.stat().st_size <= MAX_TOKENIZER_BYTES:
            lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            return lines[:MAX_VOCAB], "vocab.txt"
    return None, None
