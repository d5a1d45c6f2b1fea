"""Royalties: owners' fee schedules and publishers' revenue reports (issue 17).

Money is stored as decimal text (``"1234.56"``), never as a float: a statement must add up to the
cent. A revenue report is one row per derivative and period; reporting again replaces the amount
and the previous figure stays in ``revenue_report_history`` (the audit trail).

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "fee_schedules",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("model", sa.String(500), nullable=False),
        sa.Column("rate", sa.String(40), nullable=False),
        sa.Column("threshold", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _created(),
        sa.UniqueConstraint("owner", "model", name="uq_fee_schedules_owner_model"),
    )
    op.create_index("ix_fee_schedules_owner", "fee_schedules", ["owner"])
    op.create_table(
        "revenue_reports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("derivative", sa.String(500), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("amount", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("publisher", sa.String(100), nullable=False),
        _created(),
        sa.UniqueConstraint("derivative", "period", name="uq_revenue_reports_derivative_period"),
    )
    op.create_index("ix_revenue_reports_period", "revenue_reports", ["period"])
    op.create_table(
        "revenue_report_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("derivative", sa.String(500), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("amount", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("publisher", sa.String(100), nullable=False),
        _created(),
    )


def downgrade() -> None:
    op.drop_table("revenue_report_history")
    op.drop_index("ix_revenue_reports_period", table_name="revenue_reports")
    op.drop_table("revenue_reports")
    op.drop_index("ix_fee_schedules_owner", table_name="fee_schedules")
    op.drop_table("fee_schedules")
