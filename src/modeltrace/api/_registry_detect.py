"""Lineage detection for the registry facade: compare a newcomer with the registered fingerprints,
record the derivations found, and identify a suspect against the registry (Holm-corrected)."""

from __future__ import annotations

import hashlib
import math
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltrace.errors import RegistryError, UsageError

if TYPE_CHECKING:
    import numpy as np

    from modeltrace.fingerprint.model import Fingerprint
    from modeltrace.lineage.comparison import Comparison
    from modeltrace.lineage.features import FeatureCache
    from modeltrace.registry import Registry

#: A fingerprint is a few MB whatever the model's size.
MAX_FINGERPRINT_BYTES = 64 * 1024 * 1024


# --- detection and identification -----------------------------------------------------------------

_FINGERPRINTS: OrderedDict[str, Fingerprint] = OrderedDict()
_CACHE_SIZE = 256
_CACHE_LOCK = threading.Lock()  # the service calls in from many threads


def load_fingerprint_bytes(data: bytes) -> Fingerprint:
    """A fingerprint from bytes, validated by the file reader; cached by content digest."""
    from modeltrace.fingerprint.model import load_fingerprint

    key = hashlib.sha256(data).hexdigest()
    cached = _cached(key)
    if cached is not None:
        return cached
    with tempfile.TemporaryDirectory(prefix="modeltrace-fp-") as folder:
        path = Path(folder) / "fingerprint.mtfp"
        path.write_bytes(data)
        fp = load_fingerprint(path)
    with _CACHE_LOCK:
        _FINGERPRINTS[key] = fp
        if len(_FINGERPRINTS) > _CACHE_SIZE:
            _FINGERPRINTS.popitem(last=False)
    return fp


def _cached(digest: str) -> Fingerprint | None:
    with _CACHE_LOCK:
        found = _FINGERPRINTS.get(digest)
        if found is not None:
            _FINGERPRINTS.move_to_end(digest)
        return found


def _stored_fingerprint(store: Registry, digest: str) -> Fingerprint:
    cached = _cached(digest)
    return cached if cached is not None else load_fingerprint_bytes(store.fingerprint(digest))


def _rank(
    suspect: Fingerprint,
    candidates: list[tuple[dict[str, Any], Fingerprint]],
    alpha: float,
    family: int | None = None,
) -> list[tuple[dict[str, Any], Comparison, float | None]]:
    """Compare with every candidate and apply Holm's correction over them, exactly as
    ``lineage.identify`` does, keeping each full comparison (the evidence the registry stores)."""
    from modeltrace.lineage.features import FeatureCache as Cache

    cache = Cache()  # the suspect's whitened features, made once for all its candidates
    compared = [(meta, _compare(suspect, fp, alpha, cache)) for meta, fp in candidates]
    return _holm_ranked(compared, alpha, family)


def _compare(
    suspect: Fingerprint, candidate: Fingerprint, alpha: float, cache: FeatureCache | None = None
) -> Comparison:
    """One full comparison, with one BLAS thread (the results then do not depend on the thread
    count, so a scan's workers and this process agree to the bit). ``cache``: features kept across
    the comparisons of one suspect (bit for bit what a recomputation gives)."""
    from modeltrace.api._blas import one_blas_thread
    from modeltrace.lineage.compare import compare_fingerprints

    with one_blas_thread():
        return compare_fingerprints(suspect, candidate, alpha=alpha, feature_cache=cache)


def _holm_ranked(
    results: list[tuple[dict[str, Any], Comparison]], alpha: float, family: int | None = None
) -> list[tuple[dict[str, Any], Comparison, float | None]]:
    """Holm's correction over the comparisons made, ranked. ``family``: the number of hypotheses
    corrected for when the candidates are a shortlist of a larger registry; the models not compared
    enter Holm's procedure with p = 1 (docs/scale.md, "Candidate index", says why the correction
    runs over all of them)."""
    from modeltrace.stats import holm

    natural = [None if r.log10_p is None else r.log10_p * math.log(10) for _, r in results]
    untested = max(0, (family or 0) - len(results))
    adjusted = holm([*natural, *([0.0] * untested)], log=True)[: len(results)]
    ranked = []
    for (meta, result), log_adj in zip(results, adjusted, strict=True):
        if result.verdict == "related" and (log_adj is None or log_adj >= math.log(alpha)):
            result = replace(result, verdict="unrelated")  # not significant once the candidates count
        ranked.append((meta, result, None if log_adj is None else log_adj / math.log(10)))
    order = {"same-weights": 0, "related": 1, "unrelated": 2, "inconclusive": 3}
    ranked.sort(key=lambda item: (order.get(item[1].verdict, 4), item[1].log10_p or 1.0))
    return ranked


def _evidence(result: Comparison, log10_adjusted: float | None, direction: str) -> dict[str, Any]:
    keep = ("p_value_test", "paths_tried", "alpha", "relations", "direction", "direction_evidence",
            "block_map", "effect_size", "similarity_matrix", "exact", "shared_anchors",
            "p_value_kind")  # fmt: skip
    evidence = {key: getattr(result, key) for key in keep}
    evidence["log10_p_adjusted"] = log10_adjusted
    evidence["correction"] = "Holm"
    evidence["edge_direction"] = direction
    return evidence


@dataclass
class PendingDetection:
    """A newcomer's detection between its registration and its ranking (a scan compares in its
    workers meanwhile): the candidates chosen when it was registered, as ``registry add`` chooses."""

    model: dict[str, Any]
    own_declared: set[str]
    #: The registered models to compare with (id, name, namespace, fingerprint digest, declared).
    candidates: list[dict[str, Any]]
    #: The number of models Holm's correction runs over.
    family: int
    #: With a shortlist: the models nearest by sketch. Their detected bases join the candidates, and
    #: are read again just before ranking (a detection recorded since may have added one).
    chosen: list[int] | None = None


def plan_detection(
    store: Registry,
    model: dict[str, Any],
    suspect: Fingerprint | None = None,
    *,
    sketch: np.ndarray | None = None,
) -> PendingDetection | None:
    """The candidates of a just-registered newcomer (None: nothing to compare with). Must run before
    the next model is registered: the shortlist and Holm's family are the registry as it is now.
    ``sketch``: the newcomer's, already made (a scan's worker made it); then its fingerprint is
    not read here at all."""
    from modeltrace.api._registry_index import find_candidates
    from modeltrace.lineage.candidates import DEFAULT_SHORTLIST

    fp = suspect
    if fp is None and sketch is None:
        fp = _stored_fingerprint(store, model["fingerprint"])
    # The full comparison runs on the nearest registered models by sketch, Holm over all of them.
    search = find_candidates(store, fp, shortlist=DEFAULT_SHORTLIST, exclude=model["id"], sketch=sketch)
    if not search.models:
        return None
    own_declared = {d["base"] for d in store.get(model["id"])["declared"]}
    chosen = None
    if search.info.get("index") != "none":
        chosen = [
            meta["id"] for meta in search.models[: len(search.models) - search.info.get("added_bases", 0)]
        ]
    return PendingDetection(model, own_declared, search.models, search.family, chosen)


def final_candidates(store: Registry, pending: PendingDetection) -> list[dict[str, Any]]:
    """The candidates to rank: with a shortlist, the nearest by sketch and their detected bases as
    the registry holds them now (after the detections of every model registered before)."""
    if pending.chosen is None:
        return pending.candidates
    newcomer = pending.model["id"]
    bases = [i for i in store.detected_bases(pending.chosen) if i not in pending.chosen and i != newcomer]
    known = {meta["id"]: meta for meta in pending.candidates}
    missing = [i for i in bases if i not in known]
    if missing:
        known.update({meta["id"]: meta for meta in store.fingerprinted_models(missing)})
    return [known[i] for i in [*pending.chosen, *bases] if i in known]


def finish_detection(
    store: Registry,
    pending: PendingDetection,
    comparisons: dict[str, Comparison],
    alpha: float | None,
) -> list[dict[str, Any]]:
    """Rank the newcomer's candidates (Holm over the family) and record the derivations found.
    ``comparisons``: those already made, by candidate fingerprint digest (a scan's workers made
    them); the others are made here."""
    import modeltrace
    from modeltrace.lineage import DEFAULT_ALPHA
    from modeltrace.registry.records import Detection

    level = DEFAULT_ALPHA if alpha is None else alpha
    model = pending.model
    others = final_candidates(store, pending)
    results = []
    for meta in others:
        found = comparisons.get(meta["fingerprint"])
        if found is None:
            suspect = _stored_fingerprint(store, model["fingerprint"])
            found = comparisons[meta["fingerprint"]] = _compare(
                suspect, _stored_fingerprint(store, meta["fingerprint"]), level
            )
        results.append((meta, found))
    detections = []
    for meta, result, log10_adjusted in _holm_ranked(results, level, pending.family):
        if not result.derived:
            continue
        suspect_id, base_id, direction = _direction(model, meta, pending.own_declared, result)
        fingerprints = {model["id"]: model["fingerprint"], meta["id"]: meta["fingerprint"]}
        detections.append(
            Detection(
                suspect_id=suspect_id,
                base_id=base_id,
                verdict=result.verdict,
                p_value=result.p_value,
                log10_p=result.log10_p,
                test=result.p_value_test,
                relation=result.relation,
                layer_map=result.layer_map,
                evidence=_evidence(result, log10_adjusted, direction),
                suspect_fingerprint=fingerprints[suspect_id],
                base_fingerprint=fingerprints[base_id],
                modeltrace_version=modeltrace.__version__,
            )
        )
    _mark_closest(detections, model["id"])
    store.record_detections(detections)
    names = {model["id"]: model["name"], **{m["id"]: m["name"] for m in others}}
    return [
        {"suspect": names[d.suspect_id], "base": names[d.base_id], "verdict": d.verdict, "p_value": d.p_value,
         "log10_p": d.log10_p, "test": d.test, "relation": d.relation,
         "direction": d.evidence["edge_direction"], "closest": d.closest}
        for d in detections
    ]  # fmt: skip


def detect_and_record(store: Registry, model: dict[str, Any], alpha: float | None) -> list[dict[str, Any]]:
    """Compare a newcomer with the fingerprinted models (the nearest by sketch once there are many)
    and record the derivations found."""
    pending = plan_detection(store, model)
    return [] if pending is None else finish_detection(store, pending, {}, alpha)


def _mark_closest(detections: list[Any], newcomer: int) -> None:
    """Mark the newcomer's closest relative among its detected bases: the highest mean similarity of
    mapped layers (then the smaller p). Derivatives of one base are all related to each other, and
    a derivative is nearer its parent than its siblings, so this edge is the one the tree follows.
    Edges where an earlier model derives from the newcomer (as declared or shown by the weights)
    are that model's own claim and are kept as closest too."""
    own = [d for d in detections if d.suspect_id == newcomer]
    for found in detections:
        found.closest = found.suspect_id != newcomer
    if own:
        best = max(own, key=lambda d: (_similarity(d), -(d.log10_p or 0.0)))
        best.closest = True


def _similarity(found: Any) -> float:
    value = ((found.evidence or {}).get("effect_size") or {}).get("mapped_similarity")
    return float(value) if isinstance(value, int | float) else 0.0


def _direction(
    new: dict[str, Any], old: dict[str, Any], new_declared: set[str], result: Comparison
) -> tuple[int, int, str]:
    """Which of two related models is the derivative. The weights rarely say (the engine reports
    shared ancestry); then a declaration decides, and failing that the newcomer is taken as derived
    from what was registered before, and the edge says it is an assumption."""
    said = str(result.direction or "")
    if said == "suspect derived from base":
        return new["id"], old["id"], "from the weights"
    if said == "base derived from suspect":
        return old["id"], new["id"], "from the weights"
    if old["name"] in new_declared or f"{old['namespace']}/{old['name']}" in new_declared:
        return new["id"], old["id"], "as declared"
    if new["name"] in old["declared"] or f"{new['namespace']}/{new['name']}" in old["declared"]:
        return old["id"], new["id"], "as declared"
    return new["id"], old["id"], "assumed: the later registration derives from the earlier"


def registry_identify(
    suspect: str | Path | bytes,
    *,
    db: str | None = None,
    registry: Registry | None = None,
    alpha: float | None = None,
    shortlist: int | None = None,
    index: str = "auto",
) -> dict[str, Any]:
    """Rank the registered models as bases for ``suspect`` (a model, a fingerprint file or its
    bytes), Holm-corrected across all of them; the same keys as :func:`modeltrace.api.identify`,
    plus ``shortlist`` (index kind, candidates compared, models searched, seconds) and ``timing``.

    The full comparison runs on the ``shortlist`` registered models nearest by sketch (default
    ``DEFAULT_SHORTLIST``; 0 compares every one); ``index`` is auto, exact, usearch or pgvector
    (PostgreSQL with the vector extension: searched in the database; what auto picks there)."""
    from modeltrace.api._lineage import load_or_fingerprint
    from modeltrace.api._registry_index import INDEX_KINDS, find_candidates
    from modeltrace.lineage import DEFAULT_ALPHA
    from modeltrace.lineage.candidates import DEFAULT_SHORTLIST

    started = time.perf_counter()
    level = DEFAULT_ALPHA if alpha is None else alpha
    if not 0 < level < 1:
        raise UsageError(f"alpha must lie in (0, 1), got {level}.")
    wanted = DEFAULT_SHORTLIST if shortlist is None else shortlist
    if wanted < 0:
        raise UsageError(f"The shortlist size must be 0 (compare every model) or more, got {wanted}.")
    if index not in INDEX_KINDS:
        raise UsageError(f"Unknown index kind {index!r}: choose one of {', '.join(INDEX_KINDS)}.")
    if isinstance(suspect, bytes):
        if len(suspect) > MAX_FINGERPRINT_BYTES:
            raise UsageError(
                f"The fingerprint is {len(suspect):,} bytes; the limit is {MAX_FINGERPRINT_BYTES:,}."
            )
        fp = load_fingerprint_bytes(suspect)
    else:
        fp = load_or_fingerprint(suspect)
    from modeltrace.registry import Registry

    store, owned = (registry, False) if registry is not None else (Registry(db), True)
    try:
        loaded = time.perf_counter()
        search = find_candidates(store, fp, shortlist=wanted or None, kind=index)
        if not search.models:
            raise RegistryError(
                "The registry holds no fingerprinted models: "
                "add some with `modeltrace registry add`, or pass --against."
            )
        compared = time.perf_counter()
        candidates = [(meta, _stored_fingerprint(store, meta["fingerprint"])) for meta in search.models]
        ranked = _rank(fp, candidates, level, search.family)
        finished = time.perf_counter()
    finally:
        if owned:
            store.close()
    rows = [
        {"candidate": f"{meta['namespace']}/{meta['name']}", "model_id": meta["id"],
         "verdict": result.verdict,
         "p_value": result.p_value, "log10_p": result.log10_p,
         "p_value_adjusted": None if adj is None else 10.0**adj, "log10_p_adjusted": adj,
         "p_value_kind": result.p_value_kind, "test": result.p_value_test,
         "relation": result.relation, "layer_map": result.layer_map, "bytes_read": result.bytes_read,
         "sketch_similarity": meta.get("sketch_similarity")}
        for meta, result, adj in ranked
    ]  # fmt: skip
    closest = next((row["candidate"] for row in rows if row["verdict"] in ("same-weights", "related")), None)
    timing = {"suspect_seconds": loaded - started, "shortlist_seconds": compared - loaded,
              "compare_seconds": finished - compared, "total_seconds": finished - started}  # fmt: skip
    return {"suspect": fp.name, "candidates": rows, "closest_ancestor": closest, "correction": "Holm",
            "alpha": level, "family_size": search.family, "shortlist": search.info,
            "timing": timing}  # fmt: skip
