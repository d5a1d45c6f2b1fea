"""The facade for the lineage registry: register models, query the graph, identify against it.

SQLAlchemy, Alembic and the lineage statistics load inside these functions, never at import, so
that ``modeltrace --help`` stays quick. A ``db`` argument is a database URL or SQLite path; None
means $MODELTRACE_DB, else ``registry.sqlite`` under MODELTRACE_HOME.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltrace.errors import LabelError, ModeltraceError, RegistryError, UsageError

if TYPE_CHECKING:
    from modeltrace.fingerprint.model import Fingerprint
    from modeltrace.registry import Registry
    from modeltrace.registry.records import Arrival

DEFAULT_NAMESPACE = "default"
#: What an upload may weigh: a fingerprint is a few MB whatever the model's size; a label far less.
MAX_FINGERPRINT_BYTES = 64 * 1024 * 1024
MAX_LABEL_BYTES = 4 * 1024 * 1024
_LABEL_SUFFIXES = (".json",)

Progress = Callable[[str], None]


def open_registry(db: str | None = None) -> Registry:
    """Open (creating or migrating) the registry database; close it with ``.close()`` or ``with``."""
    from modeltrace.registry import Registry

    return Registry(db)


def registry_url(db: str | None = None) -> str:
    """The database URL a ``db`` argument resolves to (password hidden)."""
    from modeltrace.registry.db import redacted, resolve_url

    return redacted(resolve_url(db))


def _registry(registry: Registry | None, db: str | None) -> tuple[Registry, bool]:
    return (registry, False) if registry is not None else (open_registry(db), True)


# --- adding models ---------------------------------------------------------------------------------


def registry_add(
    source: str | Path,
    *,
    name: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    db: str | None = None,
    registry: Registry | None = None,
    declared_bases: list[tuple[str, str | None]] | None = None,
    from_scratch: bool | None = None,
    license: str | None = None,
    detect: bool = True,
    alpha: float | None = None,
) -> dict[str, Any]:
    """Register a model folder/file, a fingerprint file or a label file (see docs/registry.md).

    Returns ``{"model": ..., "created": bool, "detected": [...]}``; ``detected`` lists the edges the
    lineage engine found against the models registered before. ``declared_bases`` adds declared
    (name, relation) claims beside those read from the label, model card or GGUF metadata;
    ``from_scratch`` and ``license`` state those claims when nothing on file does.
    """
    from modeltrace.registry.records import DeclaredBase
    from modeltrace.registry.tokens import check_namespace

    check_namespace(namespace)
    path = Path(source)
    if not path.exists():
        raise UsageError(f"'{path}' does not exist: give a model, a fingerprint file or a label file.")
    arrival = _arrival_from_path(path, name, namespace)
    for base, relation in declared_bases or []:
        arrival.declared.append(DeclaredBase(base, relation, "registry add"))
    if from_scratch is not None:
        arrival.from_scratch = from_scratch
    if license is not None:
        arrival.license = license
    store, owned = _registry(registry, db)
    try:
        return _register(store, arrival, detect=detect, alpha=alpha)
    finally:
        if owned:
            store.close()


def registry_add_upload(
    registry: Registry,
    *,
    fingerprint: bytes | None = None,
    label: bytes | None = None,
    name: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    detect: bool = True,
) -> dict[str, Any]:
    """Register uploaded bytes (a fingerprint and/or a label): the service never needs weights."""
    from modeltrace.registry.tokens import check_namespace

    check_namespace(namespace)
    if fingerprint is None and label is None:
        raise UsageError("Upload a fingerprint file, a label file, or both.")
    if fingerprint is not None and len(fingerprint) > MAX_FINGERPRINT_BYTES:
        raise UsageError(
            f"The fingerprint is {len(fingerprint):,} bytes; the limit is {MAX_FINGERPRINT_BYTES:,}."
        )
    if label is not None and len(label) > MAX_LABEL_BYTES:
        raise UsageError(f"The label is {len(label):,} bytes; the limit is {MAX_LABEL_BYTES:,}.")
    arrival: Arrival | None = None
    with tempfile.TemporaryDirectory(prefix="modeltrace-upload-") as folder:
        if label is not None:
            label_path = Path(folder) / "label.json"
            label_path.write_bytes(label)
            arrival = _arrival_from_label(label_path, name, namespace, source="upload")
        if fingerprint is not None:
            fp_path = Path(folder) / "upload.mtfp"
            fp_path.write_bytes(fingerprint)
            fp = _load_fingerprint_bytes(fingerprint)
            if arrival is None:
                arrival = _arrival_from_fingerprint(fp_path, fp, name, namespace, source="upload")
            else:
                arrival.fingerprint = fingerprint
    assert arrival is not None
    return _register(registry, arrival, detect=detect, alpha=None)


def _register(store: Registry, arrival: Arrival, *, detect: bool, alpha: float | None) -> dict[str, Any]:
    model, created, fingerprint_attached = store.add(arrival)
    detected: list[dict[str, Any]] = []
    # Only a newly seen fingerprint is compared: adding a model again must not re-run (and re-orient)
    # the edges found when it arrived.
    if detect and fingerprint_attached:
        detected = _detect(store, model, alpha)
    if detected:
        model = store.get(model["id"])
    return {"model": model, "created": created, "detected": detected}


def _arrival_from_path(path: Path, name: str | None, namespace: str) -> Arrival:
    from modeltrace.fingerprint.model import is_fingerprint_file, load_fingerprint

    if is_fingerprint_file(path):
        return _arrival_from_fingerprint(path, load_fingerprint(path), name, namespace, source=str(path))
    if path.is_file() and path.suffix.lower() in _LABEL_SUFFIXES and path.name != "config.json":
        try:
            return _arrival_from_label(path, name, namespace, source=str(path))
        except LabelError:
            pass  # not a label: maybe a bare config.json-like model file; read it as a model
    return _arrival_from_model(path, name, namespace)


def _arrival_from_model(path: Path, name: str | None, namespace: str) -> Arrival:
    from modeltrace.api._label import digest
    from modeltrace.api._lineage import fingerprint as build_fingerprint
    from modeltrace.api._models import inspect
    from modeltrace.registry.records import Arrival, DeclaredBase

    card = inspect(path)
    digests = digest(path)
    declared = card.get("declared") or {}
    origin = str(declared.get("source") or "model metadata")
    relation = declared.get("base_model_relation")
    arrival = Arrival(
        name=name or str(card.get("name") or path.name),
        namespace=namespace,
        source=str(path),
        digest=digests.oms_root,
        oms_root=digests.oms_root,
        tensor_root=digests.tensor_root,
        card=card,
        license=declared.get("license"),
        declared=[DeclaredBase(str(base), relation, origin) for base in declared.get("base_model") or []],
    )
    try:
        with tempfile.TemporaryDirectory(prefix="modeltrace-fp-") as folder:
            output = Path(folder) / "model.mtfp"
            build_fingerprint(path, output)
            arrival.fingerprint = output.read_bytes()
    except ModeltraceError:
        pass  # e.g. a bare config.json: registered with its card, without lineage evidence
    label_file = path / "modeltrace-label.json" if path.is_dir() else None
    if label_file is not None and label_file.is_file():
        _attach_label(arrival, label_file)
    return arrival


def _arrival_from_fingerprint(
    path: Path, fp: Fingerprint, name: str | None, namespace: str, *, source: str
) -> Arrival:
    from modeltrace.registry.records import Arrival

    data = path.read_bytes()
    model = fp.header.get("model") or {}
    card = {"format": model.get("format"), "config": fp.header.get("config"),
            "total_params": fp.header.get("parameters"), "layers": len(fp.layers())}  # fmt: skip
    return Arrival(
        name=name or fp.name,
        namespace=namespace,
        source=source,
        digest="mtfp:" + hashlib.sha256(data).hexdigest(),
        card=card,
        fingerprint=data,
    )


def _arrival_from_label(path: Path, name: str | None, namespace: str, *, source: str) -> Arrival:
    from modeltrace.label.schema import read_label
    from modeltrace.registry.records import Arrival

    label = read_label(path)
    digests = label["model"].get("digests") or {}
    arrival = Arrival(
        name=name or str(label["model"]["name"]),
        namespace=namespace,
        source=source,
        digest=str(digests["oms_root"]),
        oms_root=digests.get("oms_root"),
        tensor_root=digests.get("tensor_root"),
        card={"architecture": label["model"].get("architecture"), "format": label["model"].get("format")},
    )
    _attach_label(arrival, path)
    return arrival


def _attach_label(arrival: Arrival, path: Path) -> None:
    from modeltrace.api._label import label_summary
    from modeltrace.label.schema import read_label
    from modeltrace.registry.records import DeclaredBase

    label = read_label(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LabelError(f"Cannot read label '{path}': {error}") from error
    arrival.label = raw if isinstance(raw, dict) else dict(label)
    arrival.label_signed = isinstance(raw, dict) and ("payload" in raw or "dsseEnvelope" in raw)
    arrival.label_summary = label_summary(label)
    licence = label.get("license") or {}
    # The licence engine knows ids like ``llama3.1`` or ``kimi-k2.5`` that SPDX writes as LicenseRef-...
    spdx = licence.get("id")
    as_declared = (
        spdx if spdx and not str(spdx).startswith("LicenseRef-") else licence.get("declared_as") or spdx
    )
    arrival.license = arrival.license or as_declared
    if label.get("from_scratch"):
        arrival.from_scratch = True
    for base in label.get("base_models") or []:
        arrival.declared.append(DeclaredBase(str(base["id"]), base.get("relation"), "label"))


# --- detection and identification -----------------------------------------------------------------

_FINGERPRINTS: OrderedDict[str, Fingerprint] = OrderedDict()
_CACHE_SIZE = 256
_CACHE_LOCK = threading.Lock()  # the service calls in from many threads


def _load_fingerprint_bytes(data: bytes) -> Fingerprint:
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
    return cached if cached is not None else _load_fingerprint_bytes(store.fingerprint(digest))


def _rank(
    suspect: Fingerprint, candidates: list[tuple[dict[str, Any], Fingerprint]], alpha: float
) -> list[tuple[dict[str, Any], dict[str, Any], float | None]]:
    """Compare with every candidate and apply Holm's correction over them, exactly as
    ``lineage.identify`` does, keeping each full comparison (the evidence the registry stores)."""
    from modeltrace.api._blas import one_blas_thread
    from modeltrace.lineage.compare import compare_fingerprints
    from modeltrace.lineage.identify import holm_adjust

    with one_blas_thread():
        results = [(meta, compare_fingerprints(suspect, fp, alpha=alpha)) for meta, fp in candidates]
    natural = [r["log10_p"] * math.log(10) if r["log10_p"] is not None else None for _, r in results]
    ranked = []
    for (meta, result), log_adj in zip(results, holm_adjust(natural), strict=True):
        if result["verdict"] == "related" and (log_adj is None or log_adj >= math.log(alpha)):
            result["verdict"] = "unrelated"  # not significant once the number of candidates counts
        ranked.append((meta, result, None if log_adj is None else log_adj / math.log(10)))
    order = {"same-weights": 0, "related": 1, "unrelated": 2, "inconclusive": 3}
    ranked.sort(key=lambda item: (order.get(item[1]["verdict"], 4), item[1]["log10_p"] or 1.0))
    return ranked


def _evidence(result: dict[str, Any], log10_adjusted: float | None, direction: str) -> dict[str, Any]:
    keep = ("p_value_test", "paths_tried", "alpha", "relations", "direction", "direction_evidence",
            "block_map", "effect_size", "similarity_matrix", "exact", "shared_anchors",
            "p_value_kind")  # fmt: skip
    evidence = {key: result.get(key) for key in keep}
    evidence["log10_p_adjusted"] = log10_adjusted
    evidence["correction"] = "Holm"
    evidence["edge_direction"] = direction
    return evidence


def _detect(store: Registry, model: dict[str, Any], alpha: float | None) -> list[dict[str, Any]]:
    """Compare a newcomer with every fingerprinted model and record the derivations found."""
    import modeltrace
    from modeltrace.lineage import DEFAULT_ALPHA
    from modeltrace.registry.records import Detection

    level = DEFAULT_ALPHA if alpha is None else alpha
    others = [m for m in store.fingerprinted_models() if m["id"] != model["id"]]
    if not others:
        return []
    suspect = _stored_fingerprint(store, model["fingerprint"])
    own_declared = {d["base"] for d in store.get(model["id"])["declared"]}
    candidates = [(meta, _stored_fingerprint(store, meta["fingerprint"])) for meta in others]
    detections = []
    for meta, result, log10_adjusted in _rank(suspect, candidates, level):
        if result["verdict"] not in ("related", "same-weights"):
            continue
        suspect_id, base_id, direction = _direction(model, meta, own_declared, result)
        fingerprints = {model["id"]: model["fingerprint"], meta["id"]: meta["fingerprint"]}
        detections.append(
            Detection(
                suspect_id=suspect_id,
                base_id=base_id,
                verdict=result["verdict"],
                p_value=result["p_value"],
                log10_p=result["log10_p"],
                test=result.get("p_value_test"),
                relation=result.get("relation"),
                layer_map=result.get("layer_map"),
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
    new: dict[str, Any], old: dict[str, Any], new_declared: set[str], result: dict[str, Any]
) -> tuple[int, int, str]:
    """Which of two related models is the derivative. The weights rarely say (the engine reports
    shared ancestry); then a declaration decides, and failing that the newcomer is taken as derived
    from what was registered before, and the edge says it is an assumption."""
    said = str(result.get("direction") or "")
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
) -> dict[str, Any]:
    """Rank the registered models as bases for ``suspect`` (a model, a fingerprint file or its
    bytes), Holm-corrected across them; the same keys as :func:`modeltrace.api.identify`."""
    from modeltrace.api._lineage import load_or_fingerprint
    from modeltrace.lineage import DEFAULT_ALPHA

    level = DEFAULT_ALPHA if alpha is None else alpha
    if not 0 < level < 1:
        raise UsageError(f"alpha must lie in (0, 1), got {level}.")
    if isinstance(suspect, bytes):
        if len(suspect) > MAX_FINGERPRINT_BYTES:
            raise UsageError(
                f"The fingerprint is {len(suspect):,} bytes; the limit is {MAX_FINGERPRINT_BYTES:,}."
            )
        fp = _load_fingerprint_bytes(suspect)
    else:
        fp = load_or_fingerprint(suspect)
    store, owned = _registry(registry, db)
    try:
        models = store.fingerprinted_models()
        if not models:
            raise RegistryError(
                "The registry holds no fingerprinted models: "
                "add some with `modeltrace registry add`, or pass --against."
            )
        candidates = [(meta, _stored_fingerprint(store, meta["fingerprint"])) for meta in models]
        ranked = _rank(fp, candidates, level)
    finally:
        if owned:
            store.close()
    rows = [
        {"candidate": f"{meta['namespace']}/{meta['name']}", "model_id": meta["id"],
         "verdict": result["verdict"],
         "p_value": result["p_value"], "log10_p": result["log10_p"],
         "p_value_adjusted": None if adj is None else 10.0**adj, "log10_p_adjusted": adj,
         "p_value_kind": result["p_value_kind"], "test": result.get("p_value_test"),
         "relation": result["relation"], "layer_map": result["layer_map"], "bytes_read": result["bytes_read"]}
        for meta, result, adj in ranked
    ]  # fmt: skip
    closest = next((row["candidate"] for row in rows if row["verdict"] in ("same-weights", "related")), None)
    return {"suspect": fp.name, "candidates": rows, "closest_ancestor": closest, "correction": "Holm",
            "alpha": level}  # fmt: skip


# --- reading and removing ------------------------------------------------------------------------


def registry_list(
    *, query: str | None = None, namespace: str | None = None, limit: int = 100, offset: int = 0,
    db: str | None = None, registry: Registry | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A page of registered models: ``{"models": [...], "total", "limit", "offset"}``."""
    store, owned = _registry(registry, db)
    try:
        return store.list(query=query, namespace=namespace, limit=limit, offset=offset)
    finally:
        if owned:
            store.close()


def registry_show(
    ref: str | int, *, db: str | None = None, registry: Registry | None = None
) -> dict[str, Any]:
    """One model by id, NAME or NAMESPACE/NAME, with its card, label level, declared and detected edges."""
    store, owned = _registry(registry, db)
    try:
        return store.get(ref)
    finally:
        if owned:
            store.close()


def registry_remove(
    ref: str | int, *, db: str | None = None, registry: Registry | None = None
) -> dict[str, Any]:
    store, owned = _registry(registry, db)
    try:
        return store.remove(ref)
    finally:
        if owned:
            store.close()


def registry_lineage(
    ref: str | int, *, db: str | None = None, registry: Registry | None = None
) -> dict[str, Any]:
    """The ancestry of a model: ``declared`` and ``detected`` edges, ``conflicts`` and the ``tree``."""
    store, owned = _registry(registry, db)
    try:
        return store.lineage(ref)
    finally:
        if owned:
            store.close()


def registry_edge(edge_id: int, *, db: str | None = None, registry: Registry | None = None) -> dict[str, Any]:
    """One detected edge with its evidence (similarity matrix, test, layer map)."""
    store, owned = _registry(registry, db)
    try:
        return store.detected_edge(edge_id)
    finally:
        if owned:
            store.close()


# --- tokens and licences -------------------------------------------------------------------------


def token_create(namespace: str, *, db: str | None = None, registry: Registry | None = None) -> str:
    """A new write token for ``namespace`` (shown once; only its hash is stored)."""
    store, owned = _registry(registry, db)
    try:
        return store.tokens.create(namespace)
    finally:
        if owned:
            store.close()


def token_namespace(token: str, *, registry: Registry) -> str | None:
    """The namespace a bearer token may write to, or None for an invalid token."""
    return registry.tokens.namespace_of(token)


def registry_license_check(
    ref: str | int,
    *,
    use: str = "commercial",
    distribution: str = "hosted",
    mau: int = 0,
    monthly_revenue: float = 0,
    db: str | None = None,
    registry: Registry | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """The licence obligations of a deployment over a registered model's ancestry (declared and
    detected bases, with the licences the registry knows); stored in the registry when ``record``."""
    from modeltrace.api._licenses import check_license

    store, owned = _registry(registry, db)
    try:
        lineage = store.lineage(ref)
        model = store.get(lineage["model_id"])
        tree = _license_tree(lineage["tree"], store)
        with tempfile.TemporaryDirectory(prefix="modeltrace-lic-") as folder:
            tree_file = Path(folder) / "lineage.json"
            tree_file.write_text(json.dumps(tree), encoding="utf-8")
            report = check_license(
                lineage=tree_file,
                use=use,
                distribution=distribution,
                mau=mau,
                monthly_revenue=monthly_revenue,
            ).as_dict()
        profile = {"use": use, "distribution": distribution, "mau": mau, "monthly_revenue": monthly_revenue}
        if record:
            store.record_license(model["id"], profile, report)
        return {"model": model["name"], "model_id": model["id"], "profile": profile, "report": report}
    finally:
        if owned:
            store.close()


def _license_tree(
    node: dict[str, Any], store: Registry, seen: frozenset[str] = frozenset()
) -> dict[str, Any]:
    licence = None
    if node.get("model_id") is not None:
        licence = store.get(node["model_id"]).get("license")
    out: dict[str, Any] = {"name": node["model"], "license": licence or "unknown", "parents": []}
    for entry in node.get("bases", []):
        child = entry["node"]
        if child["model"] in seen or child["model"] == node["model"] or child.get("cycle"):
            continue
        relation = entry.get("relation") if entry["kind"] == "declared" else "finetune"
        parent = _license_tree(child, store, seen | {node["model"]})
        parent["relation"] = _licence_relation(relation)
        out["parents"].append(parent)
    return out


def _licence_relation(relation: str | None) -> str:
    """A declared relation in the licence engine's words; a detected edge (or a relation it does not
    know) counts as a fine-tune: a derivation of the weights, the case licences regulate."""
    from modeltrace.errors import LicenseError
    from modeltrace.licenses.lineage import normalize_relation

    try:
        return normalize_relation(relation or "finetune", "registry")
    except LicenseError:
        return "finetune"


# --- the service ---------------------------------------------------------------------------------


def create_service(db: str | None = None, *, private_reads: bool | None = None) -> Any:
    """The registry service as an ASGI application (FastAPI); see docs/registry.md."""
    from modeltrace.service import Settings, create_app

    return create_app(Settings.from_env(db=db, private_reads=private_reads))


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    db: str | None = None,
    private_reads: bool | None = None,
    log_level: str = "info",
) -> None:
    """Run the registry service with uvicorn until interrupted."""
    import uvicorn

    app = create_service(db, private_reads=private_reads)
    # Access logs carry method, path and status only: tokens travel in headers, never in URLs.
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=True,
                forwarded_allow_ips="127.0.0.1")  # fmt: skip
