"""Deterministic, seeded choices of which rows and tokens a fingerprint keeps.

Two models must sample *comparable* positions without seeing each other: unit rows are chosen from
a seed and the row count alone (same shape -> same rows), and anchor tokens from a hash of the token
STRING (vocabularies in different orders, extended or pruned, still pick mostly the same tokens).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

#: Seed of every choice; part of the fingerprint format (changing it makes old fingerprints incomparable).
DEFAULT_SEED = 20250611


def seeded_rows(count: int, keep: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """``keep`` sorted row indices out of ``count``, fixed by ``(seed, count)``; all rows if keep >= count."""
    if keep >= count:
        return np.arange(count, dtype=np.int64)
    rng = np.random.default_rng([seed, count])
    return np.sort(rng.choice(count, size=keep, replace=False)).astype(np.int64)


def _token_hash(seed: int, key: str) -> int:
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def anchor_tokens(
    vocabulary: Sequence[str] | None, rows: int, by_string: int, by_index: int, seed: int
) -> list[tuple[int, str | None]]:
    """Anchor tokens as ``(row, token string or None)``.

    ``by_string`` tokens with the smallest hash of their string (stable under vocabulary reordering,
    extension and pruning) plus ``by_index`` rows with the smallest hash of their index (the only
    choice comparable with a model whose vocabulary is unknown, e.g. an ONNX file with no tokenizer).
    """
    chosen: dict[int, str | None] = {}
    if vocabulary is not None:
        usable = min(rows, len(vocabulary))
        ranked = sorted(range(usable), key=lambda row: _token_hash(seed, "s:" + vocabulary[row]))
        seen: set[str] = set()
        for row in ranked:
            if len(seen) >= by_string:
                break
            if vocabulary[row] not in seen:  # duplicated strings cannot be matched unambiguously
                seen.add(vocabulary[row])
                chosen[row] = vocabulary[row]
    ranked_index = sorted(range(rows), key=lambda row: _token_hash(seed, f"i:{row}"))[:by_index]
    for row in ranked_index:
        chosen.setdefault(row, vocabulary[row] if vocabulary is not None and row < len(vocabulary) else None)
    return sorted(chosen.items())
