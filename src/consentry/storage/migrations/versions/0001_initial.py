"""Initial schema: ledger, projection, devices, outbox, API keys, idempotency keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.tables import BigId, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subjects",
        sa.Column("subject_ref", sa.String(64), primary_key=True),
        sa.Column("subject_id", sa.String(200), nullable=True, unique=True),
        sa.Column("jurisdiction", sa.String(10), nullable=True),
        sa.Column("head_seq", sa.Integer, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("erased_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "subject_keys",
        sa.Column("subject_ref", sa.String(64), primary_key=True),
        sa.Column("key", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("subject_ref", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("permission_id", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("notice_version", sa.String(40), nullable=False),
        sa.Column("locale", sa.String(10), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(200), nullable=True),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("subject_ref", "seq", name="uq_events_subject_seq"),
    )
    op.create_table(
        "permission_states",
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("permission_id", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("notice_version", sa.String(40), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "permission_id", name="pk_permission_states"),
    )
    op.create_table(
        "devices",
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("device_id", sa.String(100), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("app_version", sa.String(40), nullable=False),
        sa.Column("os_permissions", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "device_id", name="pk_devices"),
    )
    op.create_table(
        "outbox",
        sa.Column("position", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("published_at", UTCDateTime, nullable=True),
        sqlite_autoincrement=True,  # positions are never reused, even after pruning
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "position"])
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("credential", sa.String(250), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("credential", "key", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "api_keys",
        "outbox",
        "devices",
        "permission_states",
        "events",
        "subject_keys",
        "subjects",
    ):
        op.drop_table(table)
