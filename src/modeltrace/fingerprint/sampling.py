"""Deterministic, seeded choices of which rows and tokens a fingerprint keeps.

Two models must sample *comparable* positions without seeing each other: unit rows are chosen from
a seed and the row count alone (same shape -> same rows), and anchor tokens from a hash of the token
STRING (vocabularies in different orders, extended or pruned, still pick mostly the same tokens).

Rows are kept in *contiguous runs* (:func:`unit_run`, :func:`head_runs`, :func:`head_band`) so that a
remote read costs one HTTP range per tensor instead of one per row; a run of units starts on a
128-row boundary, so a block-FP8 weight needs one row of block scales. The exact tests stay exact:
their nulls (see :mod:`modeltrace.lineage.exact`, :mod:`modeltrace.lineage.paths`) hold for *any*
set of positions fixed before the weights are looked at, because units (and value dimensions) are
exchangeable under independent training; they never needed the positions to be scattered.
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


#: Unit runs start on a multiple of this many rows when the unit count is one (the 128 x 128 blocks of
#: block-FP8 checkpoints, DeepSeek-V3 / Kimi K2): the run then spans whole quantisation blocks.
RUN_ALIGNMENT = 128


def unit_run(count: int, keep: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """``keep`` consecutive row indices out of ``count`` (all rows if keep >= count), fixed by
    ``(seed, count)``: the start is drawn among the multiples of :data:`RUN_ALIGNMENT` that leave room
    for the run when ``count`` is a multiple of it, else among every start."""
    if keep >= count:
        return np.arange(count, dtype=np.int64)
    align = RUN_ALIGNMENT if count % RUN_ALIGNMENT == 0 else 1
    starts = (count - keep) // align + 1
    start = int(np.random.default_rng([seed, count, 1]).integers(starts)) * align
    return np.arange(start, start + keep, dtype=np.int64)


def head_runs(heads: int, head_dim: int, keep: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """The same run of ``ceil(keep / heads)`` consecutive dimensions in every head, numbered head after
    head (``h * head_dim + j``): one range per head, and a head permutation moves whole sampled runs."""
    dims = unit_run(head_dim, max(1, -(-keep // heads)), seed)
    return (np.arange(heads)[:, None] * head_dim + dims[None, :]).reshape(-1).astype(np.int64)


def head_band(heads: int, head_dim: int, keep: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Every dimension of a seeded run of ``ceil(keep / head_dim)`` consecutive heads, numbered head
    after head: one range in all (for layouts with many heads, where a run per head is a request per
    head). A head permutation moves other heads into the band, so it gives up that invariance."""
    band = min(heads, max(1, -(-keep // head_dim)))
    first = int(np.random.default_rng([seed, heads, head_dim, 2]).integers(heads - band + 1))
    return np.arange(first * head_dim, (first + band) * head_dim, dtype=np.int64)


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
