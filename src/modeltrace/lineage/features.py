"""Turn two fingerprints into comparable unit features: shared anchors and token-space whitening.

Anchor tokens are matched by string when both models know their vocabulary, else by embedding row
(reported as such: only meaningful when both use the same tokenizer order). Each unit's responses to
the shared anchors are whitened with the anchor Gram matrix, ``G^{-1/2} E_T w = U Vᵀ w`` (the polar
factor of the anchor embeddings): invariant to any rotation of the residual stream, and independent
random units come out isotropic, so cosines between unrelated units are centred on zero.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from modeltrace.fingerprint.model import Fingerprint


@dataclass(frozen=True)
class SharedAnchors:
    suspect: np.ndarray  # positions in the suspect's anchor list
    base: np.ndarray  # matching positions in the base's anchor list
    by_string: int
    by_row: int


def shared_anchors(suspect: Fingerprint, base: Fingerprint) -> SharedAnchors:
    base_by_string = {token: pos for pos, (_, token) in enumerate(base.anchors) if token is not None}
    base_by_row = {row: pos for pos, (row, _) in enumerate(base.anchors)}
    both_vocab = suspect.vocabulary is not None and base.vocabulary is not None
    pairs: list[tuple[int, int]] = []
    by_string = by_row = 0
    used: set[int] = set()
    for pos, (row, token) in enumerate(suspect.anchors):
        if both_vocab:
            match = base_by_string.get(token) if token is not None else None
            by_string += match is not None
        else:
            match = base_by_row.get(row)
            by_row += match is not None
        if match is not None and match not in used:
            used.add(match)
            pairs.append((pos, match))
    suspect_pos = np.array([p for p, _ in pairs], dtype=np.int64)
    base_pos = np.array([q for _, q in pairs], dtype=np.int64)
    return SharedAnchors(suspect_pos, base_pos, by_string, by_row)


#: Whiteners of the Gram matrices seen last, keyed by the matrix's bytes: `identify` compares one
#: suspect with many candidates and the service sees the same bases again, and the eigendecomposition
#: is about half of a small comparison's time. The whitener is a pure function of the matrix, so a
#: hit returns exactly what a recomputation would (arrays are read-only so no caller can alter one).
_WHITENERS: OrderedDict[tuple[object, ...], np.ndarray] = OrderedDict()
_WHITENERS_KEPT = 32  # at most 32 x 400 KB for 320 anchors
_WHITENERS_LOCK = threading.Lock()


def whitener(gram: np.ndarray, relative_floor: float = 1e-5) -> np.ndarray:
    """Symmetric pseudo-inverse square root of a Gram matrix (drops its numerical null space)."""
    contents = hashlib.blake2b(np.ascontiguousarray(gram).tobytes(), digest_size=16).digest()
    key = (gram.shape, gram.dtype.str, relative_floor, contents)
    with _WHITENERS_LOCK:
        if key in _WHITENERS:
            _WHITENERS.move_to_end(key)
            return _WHITENERS[key]
    values, vectors = np.linalg.eigh(gram.astype(np.float64))
    keep = values > relative_floor * max(float(values.max()), 1e-30)
    scaled = vectors[:, keep] / np.sqrt(values[keep])
    white = (scaled @ vectors[:, keep].T).astype(np.float32)
    white.setflags(write=False)
    with _WHITENERS_LOCK:
        _WHITENERS[key] = white
        while len(_WHITENERS) > _WHITENERS_KEPT:
            _WHITENERS.popitem(last=False)
    return white


_CachedFeatures = tuple[object, np.ndarray, tuple[np.ndarray, ...], list[np.ndarray]]


class FeatureCache:
    """Whitened unit features kept across comparisons that share a fingerprint: ``identify`` compares
    one suspect with many candidates, and the suspect's features (half the work of a large
    comparison) are the same every time. Meant to live for one batch of comparisons, during which the
    fingerprints are not edited in place.

    An entry is keyed by the fingerprint *object*, the whitener *object* (the whitener cache hands out
    the same one for the same anchor Gram), the anchor positions and the part, and holds the first
    two, so no other object can take their ids while the cache lives; a hit also checks that the
    fingerprint still holds the very arrays the features were computed from. So a hit returns exactly
    what a recomputation would (arrays read-only). The ``entries`` used last are kept (4: up and
    gate of two fingerprints, about 200 MB for Kimi K2 fingerprints with 320 anchors)."""

    def __init__(self, entries: int = 4) -> None:
        self._entries = entries
        # key -> (fingerprint, whitener, the arrays read, the features)
        self._kept: OrderedDict[tuple[object, ...], _CachedFeatures] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(
        self, owner: object, positions: np.ndarray, white: np.ndarray, part: str, sources: list[np.ndarray],
        compute: Callable[[], list[np.ndarray]],
    ) -> list[np.ndarray]:  # fmt: skip
        """The features of ``owner``'s ``part`` (computed from ``sources`` by ``compute``)."""
        key = (id(owner), id(white), part, np.asarray(positions, dtype=np.int64).tobytes())
        with self._lock:
            kept = self._kept.get(key)
            if (kept is not None and kept[0] is owner and kept[1] is white and len(kept[2]) == len(sources)
                    and all(old is new for old, new in zip(kept[2], sources, strict=True))):  # fmt: skip
                self._kept.move_to_end(key)
                self.hits += 1
                return kept[3]
            self.misses += 1
        features = compute()
        for array in features:
            array.setflags(write=False)
        with self._lock:
            self._kept[key] = (owner, white, tuple(sources), features)
            self._kept.move_to_end(key)
            while len(self._kept) > self._entries:
                self._kept.popitem(last=False)
        return features


def normalised_rows(features: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length (all-zero rows stay zero), so row products are cosines."""
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def best_match_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over a's units of the best cosine with any of b's units (invariant to unit order)."""
    return float(np.mean(np.max(a @ b.T, axis=1)))


def sign_blind_similarity(
    suspect_up: np.ndarray, suspect_gate: np.ndarray, base_up: np.ndarray, base_gate: np.ndarray
) -> np.ndarray:
    """Unit-by-unit similarity of gated MLPs that ignores the sign of each unit's ``up`` row:
    ``(gate cosine + |up cosine|) / 2``. Flipping a unit's ``up`` row (and its ``down`` column) leaves a
    gated MLP's function unchanged, so this is what the unit-sign test may condition on."""
    return (suspect_gate @ base_gate.T + np.abs(suspect_up @ base_up.T)) / 2


class UnitSimilarity:
    """Units-by-units similarity of suspect block ``a`` and base block ``b``: cosine, or for gated MLPs
    (``parts`` = up and gate features of S and B) the sign-blind similarity, so that a suspect with
    flipped unit signs keeps its fixed points. Pairs marked with :meth:`keep` are computed once and
    shared by the pairing and the tests that read them (each matrix is one small product pair)."""

    def __init__(
        self, suspect: list[np.ndarray], base: list[np.ndarray], parts: tuple[list[np.ndarray], ...] | None
    ) -> None:
        self.suspect, self.base, self.parts = suspect, base, parts
        self._kept: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, a: int, b: int) -> np.ndarray:
        kept = self._kept.get((a, b))
        if kept is not None:
            return kept
        if self.parts is None:
            return self.suspect[a] @ self.base[b].T
        up_s, gate_s, up_b, gate_b = self.parts
        return sign_blind_similarity(up_s[a], gate_s[a], up_b[b], gate_b[b])

    def keep(self, a: int, b: int, matrix: np.ndarray) -> None:
        self._kept[(a, b)] = matrix

    def block(self, a: int, b: int) -> tuple[float, np.ndarray]:
        """Block similarity (mean over a's units of the best match in b, as
        :func:`pairwise_block_similarity` computes it) and the matrix it came from."""
        matrix = self(a, b)
        return float(np.mean(np.max(matrix, axis=1))), matrix


def pairwise_block_similarity(
    suspect: list[np.ndarray],
    base: list[np.ndarray],
    suspect_gate: list[np.ndarray] | None = None,
    base_gate: list[np.ndarray] | None = None,
) -> np.ndarray:
    """:func:`block_similarity_matrix` one small product per block pair: the reference it must agree
    with (``benchmarks/compare_speed.py`` times both), and the path for empty blocks."""
    if suspect_gate is None or base_gate is None:
        return np.array([[best_match_similarity(s, b) for b in base] for s in suspect]).reshape(
            len(suspect), len(base)
        )
    return np.array(
        [
            [float(np.mean(np.max(sign_blind_similarity(suspect[a], suspect_gate[a], base[b], base_gate[b]),
                                  axis=1)))
             for b in range(len(base))]
            for a in range(len(suspect))
        ]
    ).reshape(len(suspect), len(base))  # fmt: skip


#: Elements of one chunk of the batched unit-by-unit product (bounds its memory to ~64 MB of float32).
_CHUNK_ELEMENTS = 16 * 1024 * 1024


def _stacked(blocks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Blocks' unit rows stacked into one matrix, and each block's first row (for ``reduceat``)."""
    starts = np.cumsum([0] + [len(block) for block in blocks[:-1]], dtype=np.int64)
    return np.concatenate(blocks, axis=0), starts


def block_similarity_matrix(
    suspect: list[np.ndarray],
    base: list[np.ndarray],
    suspect_gate: list[np.ndarray] | None = None,
    base_gate: list[np.ndarray] | None = None,
) -> np.ndarray:
    """``best_match_similarity`` (or, given gate features, the sign-blind version with ``suspect`` and
    ``base`` as the up features) of every block pair, as a few large products instead of one small
    product per pair: the suspect's blocks go through in chunks, each against all of the base's units
    at once, with the per-block maxima taken by ``np.maximum.reduceat``. Each mean is taken over a
    contiguous row with ``np.mean``, the same summation as the per-pair path, so equal products give
    bit-equal similarities."""
    if not suspect or not base or any(len(block) == 0 for block in (*suspect, *base)):
        return pairwise_block_similarity(suspect, base, suspect_gate, base_gate)
    base_up, base_starts = _stacked(base)
    base_gates = None if base_gate is None else _stacked(base_gate)[0]
    out = np.empty((len(suspect), len(base)))
    per_chunk = max(1, _CHUNK_ELEMENTS // max(1, len(base_up) * max(len(block) for block in suspect)))
    for first in range(0, len(suspect), per_chunk):
        chunk = list(range(first, min(first + per_chunk, len(suspect))))
        up, starts = _stacked([suspect[a] for a in chunk])
        if suspect_gate is None or base_gates is None:
            products = up @ base_up.T
        else:
            gate = np.concatenate([suspect_gate[a] for a in chunk], axis=0)
            products = gate @ base_gates.T
            products += np.abs(up @ base_up.T)
            products /= 2
        # [suspect units, base blocks]: each suspect unit's best match within each base block.
        best = np.maximum.reduceat(products, base_starts, axis=1)
        for position, a in enumerate(chunk):
            rows = best[starts[position] : starts[position] + len(suspect[a])]
            out[a] = np.mean(np.ascontiguousarray(rows.T), axis=1, dtype=np.float32)
    return out
