"""The customer's stored language and time zone for the page.

Revision ID: 0006_subject_preferences
Revises: 0005_i14_erasure_checkpoints
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.tables import SID, UTCDateTime

revision = "0007_subject_preferences"
down_revision = "0006_use_outcome"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_preferences",
        sa.Column("subject_id", SID, primary_key=True),
        sa.Column("locale", sa.String(16), nullable=True),
        sa.Column("time_zone", sa.String(64), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("subject_preferences")
