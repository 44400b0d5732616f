"""The database schema (SQLAlchemy Core). Migrations in ``migrations/`` must match it (tested)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite keeps no zone by itself)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware values")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


BigId = BigInteger().with_variant(Integer(), "sqlite")
SID = String(200)

# One row per ledger chain. ``subject_id`` is the platform's id; erasure clears it and the
# chain stays, named by ``subject_ref`` only.
subjects = Table(
    "subjects",
    metadata,
    Column("subject_ref", String(64), primary_key=True),
    Column("subject_id", SID, nullable=True, unique=True),
    Column("jurisdiction", String(10), nullable=True),
    Column("head_seq", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("erased_at", UTCDateTime, nullable=True),
)

# Per-subject keys sealing the personal fields of ledger events; erasure deletes the row.
subject_keys = Table(
    "subject_keys",
    metadata,
    Column("subject_ref", String(64), primary_key=True),
    Column("key", LargeBinary(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# The ledger: rows are only ever inserted.
events = Table(
    "events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("subject_ref", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("permission_id", String(100), nullable=False),
    Column("state", String(20), nullable=False),
    Column("options", Text, nullable=False),
    Column("notice_version", String(40), nullable=False),
    Column("locale", String(10), nullable=True),
    Column("source", String(20), nullable=False),
    Column("channel", String(200), nullable=True),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("subject_ref", "seq", name="uq_events_subject_seq"),
)

# The current-state projection of the ledger, updated in the same transaction.
permission_states = Table(
    "permission_states",
    metadata,
    Column("subject_id", SID, nullable=False),
    Column("permission_id", String(100), nullable=False),
    Column("state", String(20), nullable=False),
    Column("options", Text, nullable=False),
    Column("notice_version", String(40), nullable=False),
    Column("source", String(20), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("event_id", String(36), nullable=False),
    PrimaryKeyConstraint("subject_id", "permission_id", name="pk_permission_states"),
)

devices = Table(
    "devices",
    metadata,
    Column("subject_id", SID, nullable=False),
    Column("device_id", String(100), nullable=False),
    Column("platform", String(20), nullable=False),
    Column("app_version", String(40), nullable=False),
    Column("os_permissions", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("subject_id", "device_id", name="pk_devices"),
)

# Written with each change, in the same transaction; a relay publishes and marks rows.
outbox = Table(
    "outbox",
    metadata,
    Column("position", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("subject_id", SID, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Index("ix_outbox_unpublished", "published_at", "position"),
    # Per-subject order across relays (storage/outbox.in_order) and erasure look rows up by subject.
    Index("ix_outbox_subject", "subject_id", "position"),
    sqlite_autoincrement=True,  # positions are never reused, even after pruning
)

# Access reports: the uses of personal data that services reported ("who used my data"), and
# the uses they refrained from because the answer was no.
uses = Table(
    "uses",
    metadata,
    Column("use_id", BigId, primary_key=True, autoincrement=True),
    Column("subject_id", SID, nullable=False),
    Column("purpose", String(100), nullable=False),
    Column("categories", Text, nullable=False),
    Column("recipient", String(100), nullable=True),
    Column("permission_id", String(100), nullable=True),
    Column("service", String(200), nullable=False),
    Column("used_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("reason", String(40), nullable=False),
    # "used": the service used the data; "refrained": it asked, was told no, and did not.
    Column("outcome", String(10), nullable=False, server_default="used"),
    Index("ix_uses_subject_time", "subject_id", "used_at"),
    Index("ix_uses_violations", "allowed", "recorded_at"),
)

# The change feed's bookkeeping: ``outbox_pruned_upto`` is the highest outbox position deleted by
# pruning (every position at or below it is gone), so a cursor below it answers 410.
feed_state = Table(
    "feed_state",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("position", BigId, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Opt-outs and erasures owed to third parties' webhooks, written by the relay (one row per
# event and recipient). pending: not yet reached the recipient; sent: reached it, no 2xx yet;
# acknowledged: it answered 2xx; dead: gave up after the maximum attempts (an admin can retry).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("subject_id", SID, nullable=True),
    Column("recipient", String(100), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", String(500), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    UniqueConstraint("event_id", "recipient", name="uq_webhook_deliveries_event_recipient"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_subject", "subject_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# ``subject_id``: the subject the stored answer is about, so erasure removes the answers
# stored for every credential (a service key's included).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("credential", String(250), nullable=False),
    Column("key", String(200), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("subject_id", SID, nullable=True),
    PrimaryKeyConstraint("credential", "key", name="pk_idempotency_keys"),
    Index("ix_idempotency_keys_subject", "subject_id"),
)

# The page's sessions, server side: the cookie names a row by its random nonce (stored as
# SHA-256 only); logout and erasure delete every row of the subject, so old cookies stop.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("nonce_hash", String(64), primary_key=True),
    Column("subject_id", SID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_web_sessions_subject", "subject_id"),
)

# Signed checkpoints: a Merkle root over every chain's head, signed with the receipt key.
# ``number`` counts from 1; ``body`` is the signed line as published (``services/checkpoints``);
# ``leaves`` the heads it covers (68 bytes each, kept for the newest two checkpoints only).
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("tree_size", BigId, nullable=False),
    Column("root", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("body", Text, nullable=False),
    Column("leaves", LargeBinary, nullable=True),
)

# The customer's own settings for the page (language, IANA time zone), one row per subject;
# erasure deletes it with the rest.
subject_preferences = Table(
    "subject_preferences",
    metadata,
    Column("subject_id", SID, primary_key=True),
    Column("locale", String(16), nullable=True),
    Column("time_zone", String(64), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)
