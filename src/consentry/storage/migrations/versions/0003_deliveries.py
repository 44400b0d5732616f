"""Webhook deliveries: opt-outs and erasures owed to third parties; the outbox by subject.

On PostgreSQL the outbox and the deliveries are queues: every row is updated once or more
soon after it is written, and each update leaves a dead index entry that scans for unpublished
or due rows walk until VACUUM removes it. Autovacuum is told to visit these two tables after a
fixed number of changes, not after a fraction of the table (which grows without bound).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.tables import BigId, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("subject_id", sa.String(200), nullable=True),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.Column("acknowledged_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("event_id", "recipient", name="uq_webhook_deliveries_event_recipient"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index("ix_webhook_deliveries_subject", "webhook_deliveries", ["subject_id"])
    op.create_index("ix_outbox_subject", "outbox", ["subject_id", "position"])
    if op.get_bind().dialect.name == "postgresql":
        for table in ("outbox", "webhook_deliveries"):
            op.execute(
                f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0, "
                "autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0, "
                "autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 10000)"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE outbox RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_vacuum_threshold, autovacuum_vacuum_cost_delay, "
            "autovacuum_analyze_scale_factor, autovacuum_analyze_threshold)"
        )
    op.drop_index("ix_outbox_subject", "outbox")
    op.drop_table("webhook_deliveries")
