"""Nearest-neighbour search over fingerprint sketches: which registered models to compare in full.

Two kinds, chosen by size (``kind="auto"``):

- ``exact``: one matrix-vector product over every sketch (numpy). No recall loss; about 20 ms of
  CPU per 100 000 sketches of 512 float32, so it is the default below ``EXACT_BELOW`` sketches;
- ``usearch``: an HNSW graph from the optional ``usearch`` package (``pip install modeltrace[index]``):
  millisecond queries at any size, approximate (its recall is measured in benchmarks/scale.py),
  but building it costs minutes of CPU per 100 000 sketches, so it pays off only for a long-lived
  process (``modeltrace serve``) over a very large registry.

The similarity is the inner product of unit-length sketches (their cosine). Pure: arrays in, ids and
scores out; usearch is imported only when such an index is built.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from modeltrace.errors import UsageError

#: Below this many sketches ``auto`` searches exactly; at or above it, with usearch installed, by HNSW.
#: Measured (docs/scale.md): exact takes about 17 ms of CPU at 100 000 sketches and misses nothing;
#: the (centred) HNSW graph found 31 or 32 of the zoo's 32 related bases there, searched in 6 ms, but
#: took 6 to 7 minutes of CPU to build, which a process recovers only after some 40 000 searches (a
#: CLI call builds it each time).
#: So the graph is chosen only where the exact matrix grows past 2 GB and a search past 0.2 s.
EXACT_BELOW = 1_000_000
#: Candidates the full comparison runs on by default (see docs/scale.md for the recall it buys).
DEFAULT_SHORTLIST = 32
KINDS = ("auto", "exact", "usearch")


@dataclass(frozen=True)
class Shortlist:
    """The candidates a search returned, most similar first, and what it took."""

    ids: list[int]
    scores: list[float]
    kind: str
    size: int  # sketches searched
    seconds: float


class CandidateIndex(Protocol):
    kind: str

    def __len__(self) -> int: ...

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` ids most similar to ``query`` and their similarities, most similar first."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add sketches (new ids) to the index."""
        ...


class ExactIndex:
    """Every sketch in one float32 matrix; a search is one product and a partial sort."""

    kind = "exact"

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        # Rows beyond ``_count`` are spare capacity, so adding models one by one copies rarely.
        self._ids = np.asarray(ids, dtype=np.int64).copy()
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32).copy()
        self._count = len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self._count]

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[: self._count]

    def __len__(self) -> int:
        return self._count

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        needed = self._count + len(ids)
        if needed > len(self._ids):
            capacity = max(needed, 2 * len(self._ids), 64)
            grown_ids = np.zeros(capacity, dtype=np.int64)
            grown_ids[: self._count] = self.ids
            grown = np.zeros((capacity, vectors.shape[1]), dtype=np.float32)
            grown[: self._count] = self.vectors
            self._ids, self._vectors = grown_ids, grown
        self._ids[self._count : needed] = ids
        self._vectors[self._count : needed] = vectors
        self._count = needed

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self._count)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = self.vectors @ np.asarray(query, dtype=np.float32)
        if k < len(scores):
            # Every sketch at least as similar as the k-th, ties at the boundary included, so that
            # which of several equal sketches make the list does not depend on argpartition's whim.
            kth = np.partition(-scores, k - 1)[k - 1]
            top = np.flatnonzero(-scores <= kth)
        else:
            top = np.arange(len(scores))
        # Most similar first, equal similarities by id (the earliest registered first), as the
        # database search orders them: models with identical sketches (the sketch is blind to
        # exactly the changes that relate them) then come out in one order everywhere.
        top = top[np.lexsort((self.ids[top], -scores[top]))][:k]
        return self.ids[top], scores[top]


class USearchIndex:
    """An HNSW graph over the sketches, from the optional usearch package, that ranks as the exact
    index does.

    The graph holds every sketch minus the sketches' mean (the *centre*, fixed when the index is
    first filled) under the inner-product metric. A query's inner products with all sketches shift
    by the same ``query @ centre`` when the centre is taken out, so the ranking is the exact one and
    adding that term back gives the cosine. What it changes is the graph: sketches of one large
    family (or of many models trained on the same data) share a component, so they are all nearer
    each other than any model outside it, and HNSW's neighbour pruning then drops every edge from
    the crowd to the outsiders: a search entering the crowd never reaches them. Measured
    (docs/scale.md): 0 of the zoo's 32 related bases found among 100 000 such sketches without the
    centre, 31 and 32 in two builds with it.
    """

    kind = "usearch"

    def __init__(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        *,
        connectivity: int = 32,
        expansion_add: int = 128,
        expansion_search: int = 256,
    ) -> None:
        try:
            index_class = _usearch_index_class()
        except ImportError:  # the optional extra is not installed
            raise UsageError(
                "The usearch index needs the optional 'usearch' package: pip install 'modeltrace[index]'."
            ) from None
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._centre: np.ndarray | None = None
        self._index = index_class(
            ndim=vectors.shape[1], metric="ip", dtype="f32", connectivity=connectivity,
            expansion_add=expansion_add, expansion_search=expansion_search,
        )  # fmt: skip
        self.add(ids, vectors)

    def __len__(self) -> int:
        return len(self._index)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        if self._centre is None:
            # The first sketches set the centre for good: any fixed centre keeps the ranking exact,
            # and a registry's later additions rarely move its mean much.
            self._centre = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
        # One call with every row: usearch inserts them on all cores (threads=0).
        self._index.add(
            np.asarray(ids, dtype=np.uint64), np.ascontiguousarray(vectors - self._centre), threads=0
        )

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self._index))
        if k <= 0 or self._centre is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        query = np.asarray(query, dtype=np.float32)
        matches = self._index.search(query, k)
        # usearch's "ip" distance is 1 - inner product (with the centred sketch); the centre's share
        # of the inner product is added back.
        similarity = 1.0 - np.asarray(matches.distances, dtype=np.float64) + float(query @ self._centre)
        return np.asarray(matches.keys, dtype=np.int64), similarity.astype(np.float32)


def _usearch_index_class() -> type:
    """usearch's ``Index``, with Ray's native library loaded first where Ray is installed: once
    usearch's library is in a process, ``ray.init`` there aborts with ``std::regex_error`` (the two
    wheels' C++ runtimes clash only in that order), and a scan or a service may start Ray after
    building an index."""
    if importlib.util.find_spec("ray") is not None:
        import ray  # noqa: F401

    from usearch.index import Index

    return Index


def usearch_available() -> bool:
    """Whether the optional usearch package is installed; asked without importing it, because a
    process that loaded usearch's native library before Ray's cannot start Ray any more (ray.init
    aborts with ``std::regex_error``; the other order works), and asking must not decide that."""
    return importlib.util.find_spec("usearch") is not None


def resolve_kind(kind: str, count: int) -> str:
    """The index kind to build for ``count`` sketches: ``auto`` is exact below ``EXACT_BELOW`` (or
    without usearch installed), usearch above."""
    if kind not in KINDS:
        raise UsageError(f"Unknown index kind {kind!r}: choose one of {', '.join(KINDS)}.")
    if kind != "auto":
        return kind
    return "usearch" if count >= EXACT_BELOW and usearch_available() else "exact"


def build_index(ids: np.ndarray, vectors: np.ndarray, kind: str = "auto") -> CandidateIndex:
    """An index over ``vectors`` (one unit-length sketch per row) answering with ``ids``."""
    chosen = resolve_kind(kind, len(ids))
    return USearchIndex(ids, vectors) if chosen == "usearch" else ExactIndex(ids, vectors)


def shortlist(index: CandidateIndex, query: np.ndarray, k: int) -> Shortlist:
    """The ``k`` candidates most similar to ``query`` (all of them when ``k`` covers the index)."""
    start = time.perf_counter()
    ids, scores = index.search(query, k)
    return Shortlist(
        [int(i) for i in ids], [float(s) for s in scores], index.kind, len(index), time.perf_counter() - start
    )
