"""Detected edges: mark each newcomer's closest relative (the edge the lineage tree draws).

Related models form dense clusters (every derivative of one base is related to every other), so the
tree follows, for each model, the detected base with the highest similarity; the other edges stay
as evidence.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("detected_edges") as batch:
        batch.add_column(sa.Column("closest", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("detected_edges") as batch:
        batch.drop_column("closest")
