"""The initial registry schema.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "fingerprints",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        _created(),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("namespace", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(100), nullable=False, unique=True),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("oms_root", sa.String(100), nullable=True),
        sa.Column("tensor_root", sa.String(100), nullable=True),
        sa.Column("card", sa.JSON(), nullable=True),
        sa.Column("license", sa.String(200), nullable=True),
        sa.Column("from_scratch", sa.Boolean(), nullable=True),
        sa.Column(
            "fingerprint_digest",
            sa.String(64),
            sa.ForeignKey("fingerprints.digest", ondelete="SET NULL"),
            nullable=True,
        ),
        _created(),
        sa.UniqueConstraint("namespace", "name", name="uq_models_namespace_name"),
    )
    op.create_index("ix_models_namespace", "models", ["namespace"])
    op.create_index("ix_models_oms_root", "models", ["oms_root"])
    op.create_index("ix_models_fingerprint_digest", "models", ["fingerprint_digest"])
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("signed", sa.Boolean(), nullable=False),
        sa.Column("level", sa.String(10), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        _created(),
    )
    op.create_index("ix_labels_model_id", "labels", ["model_id"])
    op.create_table(
        "declared_edges",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        sa.Column("base_name", sa.String(500), nullable=False),
        sa.Column("relation", sa.String(100), nullable=True),
        sa.Column("origin", sa.String(100), nullable=False),
    )
    op.create_index("ix_declared_edges_model_id", "declared_edges", ["model_id"])
    op.create_table(
        "detected_edges",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("suspect_id", sa.Integer(), sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        sa.Column("base_id", sa.Integer(), sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        sa.Column("verdict", sa.String(30), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("log10_p", sa.Float(), nullable=True),
        sa.Column("test", sa.String(50), nullable=True),
        sa.Column("relation", sa.String(500), nullable=True),
        sa.Column("layer_map", sa.JSON(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.Column("suspect_fingerprint", sa.String(64), nullable=False),
        sa.Column("base_fingerprint", sa.String(64), nullable=False),
        sa.Column("modeltrace_version", sa.String(50), nullable=False),
        _created(),
    )
    op.create_index("ix_detected_edges_suspect_id", "detected_edges", ["suspect_id"])
    op.create_index("ix_detected_edges_base_id", "detected_edges", ["base_id"])
    op.create_table(
        "license_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        _created(),
    )
    op.create_index("ix_license_results_model_id", "license_results", ["model_id"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(32), nullable=False, unique=True),
        sa.Column("namespace", sa.String(100), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        _created(),
    )


def downgrade() -> None:
    for table in ("tokens", "license_results", "detected_edges", "declared_edges", "labels", "models"):
        op.drop_table(table)
    op.drop_table("fingerprints")
