"""Total erasure and signed checkpoints: idempotency rows know their subject, server-side page
sessions, and the checkpoint log.

Revision ID: 0005_i14_erasure_checkpoints
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.tables import SID, BigId, UTCDateTime

revision = "0005_i14_erasure_checkpoints"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("subject_id", SID, nullable=True))
    op.create_index("ix_idempotency_keys_subject", "idempotency_keys", ["subject_id"])
    op.create_table(
        "web_sessions",
        sa.Column("nonce_hash", sa.String(64), primary_key=True),
        sa.Column("subject_id", SID, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_web_sessions_subject", "web_sessions", ["subject_id"])
    op.create_table(
        "checkpoints",
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("tree_size", BigId, nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("leaves", sa.LargeBinary, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("checkpoints")
    op.drop_index("ix_web_sessions_subject", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_idempotency_keys_subject", table_name="idempotency_keys")
    op.drop_column("idempotency_keys", "subject_id")
