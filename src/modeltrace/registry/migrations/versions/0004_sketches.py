"""Sketches: a compact fixed-size vector per fingerprint for the candidate index (issue 14).

``identify`` against the registry searches these for the candidates to compare in full. The table
starts empty: sketches are computed from the stored fingerprints when first needed (and when a
fingerprint is added), because computing them needs the lineage code of the running version; a
sketch whose ``version`` is not the running code's is recomputed the same way.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fingerprint_sketches",
        sa.Column(
            "fingerprint_digest",
            sa.String(64),
            sa.ForeignKey("fingerprints.digest", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fingerprint_sketches")
