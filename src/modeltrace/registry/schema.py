"""The registry's tables (SQLAlchemy 2 declarative). Changing them needs a new migration.

``test_migrations_build_the_declared_schema`` (tests/registry/test_store.py) checks that the
migrations build exactly these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class FingerprintRow(Base):
    """A fingerprint file as written by ``modeltrace fingerprint``, addressed by its SHA-256."""

    __tablename__ = "fingerprints"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class SketchRow(Base):
    """A fingerprint's sketch for the candidate index (migration 0004): ``dims`` float32 values,
    little-endian, as ``lineage.sketch`` computed them at ``version``. Kept apart from the fingerprint
    so that reading every sketch never pages through the fingerprints' bytes."""

    __tablename__ = "fingerprint_sketches"
    # Migration 0005: counting the current sketches, and listing them (with the sketch snapshot's
    # key), read this index only, never the sketches' bytes.
    __table_args__ = (Index("ix_fingerprint_sketches_current", "version", "dims", "fingerprint_digest"),)
    fingerprint_digest: Mapped[str] = mapped_column(
        String(64), ForeignKey("fingerprints.digest", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)
    dims: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ModelRow(Base):
    """One registered model. ``digest`` (the content identity) makes adding it twice a no-op:
    the OMS root when the weights or a label were seen, else ``mtfp:<fingerprint sha256>``."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_models_namespace_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    namespace: Mapped[str] = mapped_column(String(100), index=True)
    digest: Mapped[str] = mapped_column(String(100), unique=True)
    source: Mapped[str] = mapped_column(String(1000))
    oms_root: Mapped[str | None] = mapped_column(String(100), index=True)
    tensor_root: Mapped[str | None] = mapped_column(String(100))
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    license: Mapped[str | None] = mapped_column(String(200))
    from_scratch: Mapped[bool | None] = mapped_column(Boolean)
    fingerprint_digest: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("fingerprints.digest", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class LabelRow(Base):
    """A provenance label (signed envelopes keep their signature; ``level`` is L1/L2/L3)."""

    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    signed: Mapped[bool] = mapped_column(Boolean)
    level: Mapped[str | None] = mapped_column(String(10))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class DeclaredEdgeRow(Base):
    """A base model a model says it derives from (label, model card or GGUF metadata)."""

    __tablename__ = "declared_edges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    base_name: Mapped[str] = mapped_column(String(500))
    relation: Mapped[str | None] = mapped_column(String(100))
    origin: Mapped[str] = mapped_column(String(100))


class DetectedEdgeRow(Base):
    """What the lineage engine found between two registered fingerprints, with its evidence."""

    __tablename__ = "detected_edges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    suspect_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    verdict: Mapped[str] = mapped_column(String(30))
    p_value: Mapped[float | None] = mapped_column(Float)
    log10_p: Mapped[float | None] = mapped_column(Float)
    test: Mapped[str | None] = mapped_column(String(50))
    relation: Mapped[str | None] = mapped_column(String(500))
    layer_map: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    suspect_fingerprint: Mapped[str] = mapped_column(String(64))
    base_fingerprint: Mapped[str] = mapped_column(String(64))
    modeltrace_version: Mapped[str] = mapped_column(String(50))
    #: The suspect's closest relative among its detected bases (migration 0002): the edge the tree draws.
    closest: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class LicenseResultRow(Base):
    """A licence check of a model's ancestry for one deployment profile."""

    __tablename__ = "license_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class TokenRow(Base):
    """A write token of one namespace: only the SHA-256 of its secret part is kept."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    namespace: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class FeeScheduleRow(Base):
    """An owner's royalty terms for one base model (migration 0003): rate and threshold as decimal text."""

    __tablename__ = "fee_schedules"
    __table_args__ = (UniqueConstraint("owner", "model", name="uq_fee_schedules_owner_model"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    model: Mapped[str] = mapped_column(String(500))
    rate: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class RevenueReportRow(Base):
    """The revenue of one derivative for one period (YYYY-MM), as decimal text: one row per pair;
    a new report replaces it and the old figure goes to :class:`RevenueReportHistoryRow`."""

    __tablename__ = "revenue_reports"
    __table_args__ = (UniqueConstraint("derivative", "period", name="uq_revenue_reports_derivative_period"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    derivative: Mapped[str] = mapped_column(String(500))
    period: Mapped[str] = mapped_column(String(7), index=True)
    amount: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    publisher: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class RevenueReportHistoryRow(Base):
    """Every revenue report ever received, the replaced ones included (append-only audit trail)."""

    __tablename__ = "revenue_report_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    derivative: Mapped[str] = mapped_column(String(500))
    period: Mapped[str] = mapped_column(String(7))
    amount: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    publisher: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
