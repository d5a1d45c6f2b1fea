"""The registry's candidate index: sketches kept beside the fingerprints, searched for the registered
models worth a full comparison (``identify`` and the detection that runs when a model is added).

Sketches are computed lazily: a fingerprint added before migration 0004, or sketched by another
``SKETCH_VERSION``, gets its sketch the first time the index is needed (and every newly added
fingerprint at once). The index over them is cached per process and database, and rebuilt when a
model or sketch was added or removed since (a long-lived ``modeltrace serve`` keeps it warm).

On PostgreSQL with pgvector (migration 0005) ``auto`` searches in the database instead (index kind
``pgvector``, an exact scan): no process loads the sketches, a CLI call only counts them first.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modeltrace.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from modeltrace.fingerprint.model import Fingerprint
    from modeltrace.lineage.candidates import CandidateIndex, Shortlist
    from modeltrace.registry import Registry


@dataclass
class _Cached:
    state: tuple[int, int, int]
    kind: str
    index: CandidateIndex


#: The index kinds ``identify`` takes: the in-process ones and the database's own search.
INDEX_KINDS = ("auto", "exact", "usearch", "pgvector")

_INDEXES: dict[str, _Cached] = {}
_LOCK = threading.Lock()


@dataclass
class CandidateSearch:
    """Which registered models to compare in full, and how they were chosen (the ``shortlist`` JSON)."""

    models: list[dict[str, Any]]
    family: int  # every fingerprinted model: the family Holm's correction runs over
    info: dict[str, Any] = field(default_factory=dict)


def sketch_fingerprint(store: Registry, digest: str, fp: Fingerprint) -> np.ndarray:
    """Compute and store the sketch of the registered fingerprint ``digest``."""
    from modeltrace.lineage.sketch import SKETCH_VERSION, compute_sketch

    vector = compute_sketch(fp)
    store.sketches.put(digest, SKETCH_VERSION, vector)
    return vector


def ensure_sketches(store: Registry, after_id: int = 0) -> int:
    """Sketch every registered fingerprint that lacks a current sketch (of the models with an id
    above ``after_id``); returns how many were made."""
    from modeltrace.api._registry_detect import _stored_fingerprint
    from modeltrace.lineage.sketch import SKETCH_VERSION

    missing = store.sketches.missing(SKETCH_VERSION, after_id)
    for digest in missing:
        sketch_fingerprint(store, digest, _stored_fingerprint(store, digest))
    return len(missing)


def _index(store: Registry, kind: str) -> tuple[CandidateIndex, dict[str, float | int | bool]]:
    """The index over the registry's sketches, from the cache when nothing changed since it was built."""
    from modeltrace.lineage.candidates import build_index, resolve_kind
    from modeltrace.lineage.sketch import SKETCH_DIMS, SKETCH_VERSION

    start = time.perf_counter()
    state = store.sketches.state()
    key = f"{store.url}#{SKETCH_VERSION}"
    with _LOCK:
        cached = _INDEXES.get(key)
    chosen = resolve_kind(kind, state[0])
    if cached is not None and cached.state == state and cached.kind == chosen:
        return cached.index, {"sketched_now": 0, "cached": True, "seconds": time.perf_counter() - start}
    if cached is not None and cached.kind == chosen and state[1] > cached.state[1]:
        # Models added since (a scan registers them one by one): add their sketches to the index,
        # unless something was also removed (then the counts do not add up).
        with _LOCK:  # one thread adds them; another arriving meanwhile finds the state current
            made = ensure_sketches(store, after_id=cached.state[1])
            state = store.sketches.state()
            if cached.state != state:
                added = store.sketches.load(SKETCH_VERSION, SKETCH_DIMS, after_id=cached.state[1])
                if state[0] - cached.state[0] == len(added.model_ids) and state[2] >= cached.state[2]:
                    cached.index.add(added.model_ids, added.vectors)
                    cached.state = state
            if cached.state == state:
                seconds = time.perf_counter() - start
                return cached.index, {"sketched_now": made, "cached": True, "seconds": seconds}
    made = ensure_sketches(store)
    state = store.sketches.state()
    chosen = resolve_kind(kind, state[0])
    stored = store.sketches.load(SKETCH_VERSION, SKETCH_DIMS)
    index = build_index(stored.model_ids, stored.vectors, chosen)
    with _LOCK:
        _INDEXES[key] = _Cached(state, chosen, index)
    return index, {"sketched_now": made, "cached": False, "seconds": time.perf_counter() - start}


def _search_database(
    store: Registry, query: np.ndarray, k: int, size: int
) -> tuple[Shortlist, dict[str, float | int | bool]]:
    """The ``k`` nearest sketches by pgvector's exact scan, after sketching what lacks a current
    sketch (and writing the vectors of sketches stored without one)."""
    from modeltrace.lineage.candidates import Shortlist
    from modeltrace.lineage.sketch import SKETCH_VERSION

    if not store.sketches.vector_search:
        raise UsageError(
            "The pgvector index needs a PostgreSQL registry with the vector extension "
            "(migration 0005 found none): use --index auto, exact or usearch."
        )
    start = time.perf_counter()
    made = 0
    if not store.sketches.all_current(SKETCH_VERSION):
        made = ensure_sketches(store)
        store.sketches.fill_vectors()
    searched = time.perf_counter()
    ids, scores = store.sketches.search(SKETCH_VERSION, query, k)
    found = Shortlist([int(i) for i in ids], [float(s) for s in scores], "pgvector", size,
                      time.perf_counter() - searched)  # fmt: skip
    return found, {"sketched_now": made, "cached": False, "seconds": searched - start}


def find_candidates(
    store: Registry,
    suspect: Fingerprint | None,
    *,
    shortlist: int | None,
    kind: str = "auto",
    exclude: int | None = None,
    sketch: np.ndarray | None = None,
) -> CandidateSearch:
    """The registered models to compare ``suspect`` with: all of them when ``shortlist`` is None or
    covers the registry, else the ``shortlist`` nearest by sketch. ``exclude``: a model id left out
    (the suspect itself, when it is registered). ``sketch``: the suspect's, when already made (a
    scan's worker makes it); then ``suspect`` may be None."""
    from modeltrace.lineage.candidates import shortlist as search
    from modeltrace.lineage.sketch import compute_sketch

    registered = store.sketches.state()[0]
    everyone = registered - (exclude is not None)
    if shortlist is None or shortlist >= everyone:
        models = [m for m in store.fingerprinted_models() if m["id"] != exclude]
        info = {"index": "none", "size": len(models), "searched": len(models), "requested": shortlist,
                "seconds": 0.0}  # fmt: skip
        return CandidateSearch(models, len(models), info)
    if sketch is None:
        if suspect is None:
            raise ValueError("find_candidates needs the suspect's fingerprint or its sketch")
        sketch = compute_sketch(suspect)
    wanted = shortlist + (exclude is not None)
    if kind == "pgvector" or (kind == "auto" and store.sketches.vector_search):
        found, loading = _search_database(store, sketch, wanted, registered)
    else:
        index, loading = _index(store, kind)
        found = search(index, sketch, wanted)
    scores: dict[int, float | None] = {
        i: s for i, s in zip(found.ids, found.scores, strict=True) if i != exclude
    }
    chosen = list(scores)[:shortlist]
    # A popular base's derivatives are as near the suspect as the base itself and can fill the
    # shortlist: the bases detected for the shortlisted models join it.
    bases = [i for i in store.detected_bases(chosen) if i not in chosen and i != exclude]
    chosen += bases
    by_id = {m["id"]: m for m in store.fingerprinted_models(chosen)}
    models = [{**by_id[i], "sketch_similarity": scores.get(i)} for i in chosen if i in by_id]
    info = {
        "index": found.kind,
        "size": len(models),
        "added_bases": len([i for i in bases if i in by_id]),
        "searched": found.size,
        "requested": shortlist,
        "seconds": found.seconds,
        "index_seconds": loading["seconds"],
        "index_cached": loading["cached"],
        "sketched_now": loading["sketched_now"],
    }
    return CandidateSearch(models, everyone, info)
