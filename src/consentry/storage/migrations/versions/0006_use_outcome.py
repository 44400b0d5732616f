"""Access reports say what the service did: ``used`` the data, or ``refrained`` because the
answer was no. Rows written before this revision were all uses.

Revision ID: 0006_use_outcome
Revises: 0005_i14_erasure_checkpoints
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_use_outcome"
down_revision = "0005_i14_erasure_checkpoints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uses") as batch:
        batch.add_column(sa.Column("outcome", sa.String(10), nullable=False, server_default="used"))


def downgrade() -> None:
    with op.batch_alter_table("uses") as batch:
        batch.drop_column("outcome")
