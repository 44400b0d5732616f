"""Access reports: uses of personal data reported by services.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.tables import BigId, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uses",
        sa.Column("use_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("recipient", sa.String(100), nullable=True),
        sa.Column("permission_id", sa.String(100), nullable=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=False),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
    )
    op.create_index("ix_uses_subject_time", "uses", ["subject_id", "used_at"])
    op.create_index("ix_uses_violations", "uses", ["allowed", "recorded_at"])


def downgrade() -> None:
    op.drop_table("uses")
