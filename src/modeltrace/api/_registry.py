"""The facade for the lineage registry: register models, query the graph, identify against it.

SQLAlchemy, Alembic and the lineage statistics load inside these functions, never at import, so
that ``modeltrace --help`` stays quick. A ``db`` argument is a database URL or SQLite path; None
means $MODELTRACE_DB, else ``registry.sqlite`` under MODELTRACE_HOME.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltrace.api._registry_detect import (
    MAX_FINGERPRINT_BYTES,
    _stored_fingerprint,
    detect_and_record,
    load_fingerprint_bytes,
)
from modeltrace.api._registry_index import sketch_fingerprint
from modeltrace.api._registry_intake import (
    arrival_from_fingerprint,
    arrival_from_label,
    arrival_from_path,
)
from modeltrace.errors import UsageError

if TYPE_CHECKING:
    from modeltrace.registry import Registry
    from modeltrace.registry.records import Arrival

DEFAULT_NAMESPACE = "default"
#: What an uploaded label may weigh (a fingerprint: MAX_FINGERPRINT_BYTES).
MAX_LABEL_BYTES = 4 * 1024 * 1024

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
    arrival = arrival_from_path(path, name, namespace)
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
            arrival = arrival_from_label(label_path, name, namespace, source="upload")
        if fingerprint is not None:
            fp_path = Path(folder) / "upload.mtfp"
            fp_path.write_bytes(fingerprint)
            fp = load_fingerprint_bytes(fingerprint)
            if arrival is None:
                arrival = arrival_from_fingerprint(fp_path, fp, name, namespace, source="upload")
            else:
                arrival.fingerprint = fingerprint
    assert arrival is not None
    return _register(registry, arrival, detect=detect, alpha=None)


def _register(store: Registry, arrival: Arrival, *, detect: bool, alpha: float | None) -> dict[str, Any]:
    model, created, fingerprint_attached = store.add(arrival)
    detected: list[dict[str, Any]] = []
    # Only a newly seen fingerprint is compared: adding a model again must not re-run (and re-orient)
    # the edges found when it arrived.
    if fingerprint_attached:
        # The candidate index's sketch is made on arrival (it is otherwise made when first needed).
        sketch_fingerprint(store, model["fingerprint"], _stored_fingerprint(store, model["fingerprint"]))
    if detect and fingerprint_attached:
        detected = detect_and_record(store, model, alpha)
    if detected:
        model = store.get(model["id"])
    return {"model": model, "created": created, "detected": detected}


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
        report = check_license(
            tree=tree, use=use, distribution=distribution, mau=mau, monthly_revenue=monthly_revenue
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
