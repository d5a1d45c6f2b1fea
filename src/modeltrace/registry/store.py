"""The registry store: one object per database, JSON-ready dicts in and out.

Every public method opens its own short transaction, so one Registry may serve many threads (the
service) and every write is committed (durable) before the method returns.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from modeltrace.errors import RegistryConflictError, RegistryError, RegistryNotFoundError
from modeltrace.registry import migrate
from modeltrace.registry.db import create_registry_engine, redacted, resolve_url
from modeltrace.registry.graph import LineageGraph
from modeltrace.registry.records import Arrival, Detection, json_safe
from modeltrace.registry.royalty_store import RoyaltyStore
from modeltrace.registry.schema import (
    DeclaredEdgeRow,
    DetectedEdgeRow,
    FingerprintRow,
    LabelRow,
    LicenseResultRow,
    ModelRow,
    SketchRow,
)
from modeltrace.registry.sketch_store import SketchStore
from modeltrace.registry.tokens import TokenStore

MAX_PAGE = 500


class Registry:
    """Models, fingerprints, labels and lineage edges in one database (see the package docstring)."""

    def __init__(self, db: str | None = None) -> None:
        self.url = resolve_url(db)
        self.engine = create_registry_engine(self.url)
        try:
            migrate.upgrade(self.engine)
        except OperationalError as error:
            raise RegistryError(f"Cannot open the registry at {self.where}: {error.orig}") from error
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.tokens = TokenStore(self._sessions)
        self.royalties = RoyaltyStore(self._sessions)
        self.sketches = SketchStore(self._sessions, _snapshot_path(self.url))

    @property
    def where(self) -> str:
        """The database URL without its password (safe to print or log)."""
        return redacted(self.url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- writes ----------------------------------------------------------------------------------

    def add(self, arrival: Arrival) -> tuple[dict[str, Any], bool, bool]:
        """Register ``arrival``; returns (the model, created, fingerprint newly attached). Adding the
        same digest again adds nothing new but fills what the earlier add lacked (a fingerprint, a
        label, a card)."""
        try:
            return self._add(arrival)
        except IntegrityError:
            # A concurrent add of the same digest won the race: the model is there now.
            existing = self._find_by_digest(arrival.digest)
            if existing is None:
                raise RegistryConflictError(
                    f"Model name '{arrival.namespace}/{arrival.name}' is already taken by another model."
                ) from None
            return self._add(arrival)

    def _add(self, arrival: Arrival) -> tuple[dict[str, Any], bool, bool]:
        with self._sessions.begin() as session:
            row = session.scalars(select(ModelRow).where(ModelRow.digest == arrival.digest)).first()
            created = row is None
            if row is None:
                clash = session.scalars(
                    select(ModelRow).where(
                        ModelRow.namespace == arrival.namespace, ModelRow.name == arrival.name
                    )
                ).first()
                if clash is not None:
                    raise RegistryConflictError(
                        f"Model name '{arrival.namespace}/{arrival.name}' is already taken by another model "
                        f"(digest {clash.digest[:16]}...); choose another with --name."
                    )
                row = ModelRow(
                    name=arrival.name,
                    namespace=arrival.namespace,
                    digest=arrival.digest,
                    source=arrival.source[:1000],
                )
                session.add(row)
            had_fingerprint = row.fingerprint_digest is not None
            self._fill(session, row, arrival)
            session.flush()
            if arrival.label is not None:
                self._add_label(session, row, arrival)
            self._add_declared(session, row, arrival)
            session.flush()
            attached = not had_fingerprint and row.fingerprint_digest is not None
            return self._model_dict(session, row, full=True), created, attached

    def _fill(self, session: Session, row: ModelRow, arrival: Arrival) -> None:
        for attribute in ("oms_root", "tensor_root", "card", "license", "from_scratch"):
            value = getattr(arrival, attribute)
            if getattr(row, attribute) is None and value is not None:
                setattr(row, attribute, json_safe(value) if attribute == "card" else value)
        if arrival.fingerprint is not None and row.fingerprint_digest is None:
            digest = hashlib.sha256(arrival.fingerprint).hexdigest()
            if session.get(FingerprintRow, digest) is None:
                session.add(
                    FingerprintRow(digest=digest, data=arrival.fingerprint, size=len(arrival.fingerprint))
                )
                session.flush()
            row.fingerprint_digest = digest

    def _add_label(self, session: Session, row: ModelRow, arrival: Arrival) -> None:
        assert arrival.label is not None
        body = json_safe(arrival.label)
        digest = hashlib.sha256(repr(sorted(body.items())).encode()).hexdigest()
        known = session.scalars(
            select(LabelRow).where(LabelRow.model_id == row.id, LabelRow.digest == digest)
        )
        if known.first() is not None:
            return
        summary = json_safe(arrival.label_summary or {})
        level = (summary.get("traceability") or {}).get("level")
        session.add(
            LabelRow(model_id=row.id, digest=digest, body=body, signed=arrival.label_signed, level=level,
                     summary=summary)
        )  # fmt: skip

    def _add_declared(self, session: Session, row: ModelRow, arrival: Arrival) -> None:
        existing = {
            (edge.base_name, edge.origin)
            for edge in session.scalars(select(DeclaredEdgeRow).where(DeclaredEdgeRow.model_id == row.id))
        }
        for base in arrival.declared:
            if (base.name[:500], base.origin[:100]) not in existing:
                session.add(
                    DeclaredEdgeRow(model_id=row.id, base_name=base.name[:500], relation=base.relation,
                                    origin=base.origin[:100])
                )  # fmt: skip
                existing.add((base.name[:500], base.origin[:100]))

    def record_detections(self, detections: list[Detection]) -> int:
        """Store detected edges, replacing earlier ones between the same two models."""
        with self._sessions.begin() as session:
            for found in detections:
                pair = {found.suspect_id, found.base_id}
                session.execute(
                    delete(DetectedEdgeRow).where(
                        DetectedEdgeRow.suspect_id.in_(pair), DetectedEdgeRow.base_id.in_(pair)
                    )
                )
                session.add(
                    DetectedEdgeRow(
                        suspect_id=found.suspect_id,
                        base_id=found.base_id,
                        verdict=found.verdict,
                        p_value=json_safe(found.p_value),
                        log10_p=json_safe(found.log10_p),
                        test=found.test,
                        relation=(found.relation or "")[:500] or None,
                        layer_map=json_safe(found.layer_map),
                        evidence=json_safe(found.evidence),
                        suspect_fingerprint=found.suspect_fingerprint,
                        base_fingerprint=found.base_fingerprint,
                        modeltrace_version=found.modeltrace_version,
                        closest=found.closest,
                    )
                )
        return len(detections)

    def record_license(self, model_id: int, profile: dict[str, Any], report: dict[str, Any]) -> None:
        with self._sessions.begin() as session:
            session.add(
                LicenseResultRow(model_id=model_id, profile=json_safe(profile), report=json_safe(report))
            )

    def remove(self, ref: str | int) -> dict[str, Any]:
        """Delete a model with its labels, declared and detected edges; its fingerprint stays only
        while another model still uses it."""
        with self._sessions.begin() as session:
            row = self._resolve(session, ref)
            summary = {"id": row.id, "name": row.name, "namespace": row.namespace}
            fingerprint = row.fingerprint_digest
            for table, column in (
                (LabelRow, LabelRow.model_id),
                (DeclaredEdgeRow, DeclaredEdgeRow.model_id),
                (LicenseResultRow, LicenseResultRow.model_id),
            ):
                session.execute(delete(table).where(column == row.id))
            session.execute(
                delete(DetectedEdgeRow).where(
                    or_(DetectedEdgeRow.suspect_id == row.id, DetectedEdgeRow.base_id == row.id)
                )
            )
            session.delete(row)
            session.flush()
            if fingerprint is not None:
                users = session.scalar(
                    select(func.count())
                    .select_from(ModelRow)
                    .where(ModelRow.fingerprint_digest == fingerprint)
                )
                if not users:
                    session.execute(delete(SketchRow).where(SketchRow.fingerprint_digest == fingerprint))
                    session.execute(delete(FingerprintRow).where(FingerprintRow.digest == fingerprint))
            return summary

    # --- reads -----------------------------------------------------------------------------------

    def _find_by_digest(self, digest: str) -> ModelRow | None:
        with self._sessions() as session:
            return session.scalars(select(ModelRow).where(ModelRow.digest == digest)).first()

    def _resolve(self, session: Session, ref: str | int) -> ModelRow:
        """A model by id, ``namespace/name`` or a name unique across namespaces."""
        text = str(ref).strip()
        if (isinstance(ref, int) or text.isdecimal()) and 0 < int(text) < 2**31:
            row = session.get(ModelRow, int(text))
            if row is not None:
                return row
        query = select(ModelRow).where(ModelRow.name == text)
        if "/" in text:
            namespace, _, name = text.partition("/")
            scoped = session.scalars(
                select(ModelRow).where(ModelRow.namespace == namespace, ModelRow.name == name)
            ).first()
            if scoped is not None:
                return scoped
        rows = list(session.scalars(query))
        if len(rows) == 1:
            return rows[0]
        if len(rows) > 1:
            names = ", ".join(f"{r.namespace}/{r.name}" for r in rows)
            raise RegistryConflictError(f"'{text}' names several models ({names}); say NAMESPACE/NAME.")
        raise RegistryNotFoundError(f"No model '{text}' in the registry; see `modeltrace registry ls`.")

    def model_id(self, ref: str | int) -> int:
        with self._sessions() as session:
            return self._resolve(session, ref).id

    def get(self, ref: str | int) -> dict[str, Any]:
        with self._sessions() as session:
            return self._model_dict(session, self._resolve(session, ref), full=True)

    def list(
        self, *, query: str | None = None, namespace: str | None = None, limit: int = 100, offset: int = 0
    ) -> dict[str, Any]:
        """A page of models, newest last; ``query`` matches a substring of name or namespace."""
        limit = max(1, min(int(limit), MAX_PAGE))
        offset = max(0, int(offset))
        statement = select(ModelRow)
        if query:
            pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            statement = statement.where(
                or_(ModelRow.name.ilike(pattern, escape="\\"), ModelRow.namespace.ilike(pattern, escape="\\"))
            )
        if namespace:
            statement = statement.where(ModelRow.namespace == namespace)
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
            rows = session.scalars(statement.order_by(ModelRow.id).limit(limit).offset(offset))
            models = [self._model_dict(session, row, full=False) for row in rows]
        return {"models": models, "total": total, "limit": limit, "offset": offset}

    def fingerprint(self, digest: str) -> bytes:
        with self._sessions() as session:
            row = session.get(FingerprintRow, digest)
            if row is None:
                raise RegistryNotFoundError(f"No fingerprint {digest[:16]}... in the registry.")
            return row.data

    def fingerprinted_models(self, ids: list[int] | None = None) -> list[dict[str, Any]]:
        """id, name, namespace, fingerprint digest and declared base names of every model with a
        fingerprint (of those in ``ids`` when given): the candidates a newcomer is compared with."""
        query = select(ModelRow).where(ModelRow.fingerprint_digest.is_not(None))
        if ids is not None:
            query = query.where(ModelRow.id.in_(ids))
        with self._sessions() as session:
            rows = list(session.scalars(query))
            declared = self._declared_by_model(session, None if ids is None else [r.id for r in rows])
            return [
                {"id": r.id, "name": r.name, "namespace": r.namespace, "fingerprint": r.fingerprint_digest,
                 "declared": [edge.base_name for edge in declared.get(r.id, [])]}
                for r in rows
            ]  # fmt: skip

    def detected_bases(self, ids: list[int]) -> list[int]:
        """The closest detected base of each of the models ``ids`` (the edge the lineage tree draws)."""
        query = select(DetectedEdgeRow.base_id).where(
            DetectedEdgeRow.suspect_id.in_(ids), DetectedEdgeRow.closest.is_(True)
        )
        with self._sessions() as session:
            return sorted(set(session.scalars(query)))

    def detected_edge(self, edge_id: int) -> dict[str, Any]:
        with self._sessions() as session:
            edge = session.get(DetectedEdgeRow, edge_id) if 0 < edge_id < 2**31 else None
            if edge is None:
                raise RegistryNotFoundError(f"No detected edge {edge_id}.")
            names = {row.id: row.name for row in session.scalars(select(ModelRow).where(
                ModelRow.id.in_([edge.suspect_id, edge.base_id])))}  # fmt: skip
            return {**_detected_dict(edge, names), "evidence": edge.evidence}

    def graph(self) -> LineageGraph:
        """The whole lineage graph (models, declared and detected edges; evidence left out)."""
        with self._sessions() as session:
            models = {row.id: _model_summary(row) for row in session.scalars(select(ModelRow))}
            declared = [
                {"model_id": e.model_id, "base": e.base_name, "relation": e.relation, "origin": e.origin}
                for e in session.scalars(select(DeclaredEdgeRow))
            ]
            detected = [_detected_dict(e, {i: m["name"] for i, m in models.items()})
                        for e in session.scalars(select(DetectedEdgeRow))]  # fmt: skip
        return LineageGraph(models, declared, detected)

    def lineage(self, ref: str | int) -> dict[str, Any]:
        """The ancestry of one model: declared and detected edges, conflicts and the tree."""
        return self.graph().lineage(self.model_id(ref))

    def _declared_by_model(
        self, session: Session, ids: list[int] | None = None
    ) -> dict[int, list[DeclaredEdgeRow]]:
        grouped: dict[int, list[DeclaredEdgeRow]] = {}
        query = select(DeclaredEdgeRow)
        if ids is not None:
            query = query.where(DeclaredEdgeRow.model_id.in_(ids))
        for edge in session.scalars(query):
            grouped.setdefault(edge.model_id, []).append(edge)
        return grouped

    def _model_dict(self, session: Session, row: ModelRow, *, full: bool) -> dict[str, Any]:
        result = _model_summary(row)
        label = session.scalars(
            select(LabelRow).where(LabelRow.model_id == row.id).order_by(LabelRow.id.desc())
        ).first()
        result["label"] = None if label is None else {
            "level": label.level or "none",
            "signed": label.signed,
            "missing_for_next": (label.summary or {}).get("traceability", {}).get("missing_for_next", []),
        }  # fmt: skip
        if not full:
            return result
        result["card"] = row.card
        result["declared"] = [
            {"base": e.base_name, "relation": e.relation, "origin": e.origin}
            for e in session.scalars(select(DeclaredEdgeRow).where(DeclaredEdgeRow.model_id == row.id))
        ]
        edges = list(session.scalars(select(DetectedEdgeRow).where(
            or_(DetectedEdgeRow.suspect_id == row.id, DetectedEdgeRow.base_id == row.id))))  # fmt: skip
        ids = {e.suspect_id for e in edges} | {e.base_id for e in edges}
        names = {m.id: m.name for m in session.scalars(select(ModelRow).where(ModelRow.id.in_(ids)))}
        result["detected"] = [_detected_dict(e, names) for e in edges]
        result["label_body"] = None if label is None else label.body
        return result


def _snapshot_path(url: str) -> Path | None:
    """Where a SQLite registry keeps the copy of its sketches (beside the database file)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    database = Path(parsed.database)
    return database.with_name(database.name + ".sketches")


def _model_summary(row: ModelRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "namespace": row.namespace,
        "digest": row.digest,
        "source": row.source,
        "oms_root": row.oms_root,
        "tensor_root": row.tensor_root,
        "license": row.license,
        "from_scratch": row.from_scratch,
        "fingerprint": row.fingerprint_digest,
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }


def _detected_dict(edge: DetectedEdgeRow, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": edge.id,
        "suspect_id": edge.suspect_id,
        "suspect": names.get(edge.suspect_id),
        "base_id": edge.base_id,
        "base": names.get(edge.base_id),
        "verdict": edge.verdict,
        "p_value": edge.p_value,
        "log10_p": edge.log10_p,
        "test": edge.test,
        "relation": edge.relation,
        "layer_map": edge.layer_map,
        "fingerprints": {"suspect": edge.suspect_fingerprint, "base": edge.base_fingerprint},
        "modeltrace_version": edge.modeltrace_version,
        "closest": edge.closest,
        # "from the weights", "as declared" or "assumed: ..." (api/_registry_detect.py::_direction)
        "direction": (edge.evidence or {}).get("edge_direction"),
    }
