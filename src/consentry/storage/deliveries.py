"""Rows of ``webhook_deliveries``: enqueue (idempotent), claim what is due, record attempts.

Claiming takes a lease: the claimed rows' ``next_attempt_at`` moves to the lease's end, so a
worker that dies mid-send leaves them to be retried when the lease runs out, and the outcome
is recorded only while the row still carries that lease (nobody re-claimed it meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, func, select, text, update

from consentry.storage.rows import record_of
from consentry.storage.tables import UTCDateTime
from consentry.storage.tables import webhook_deliveries as wd

PENDING, SENT, ACKNOWLEDGED, DEAD = "pending", "sent", "acknowledged", "dead"
STATUSES = (PENDING, SENT, ACKNOWLEDGED, DEAD)
OPEN = (PENDING, SENT)  # still to be retried
ERROR_MAX = 500


@dataclass(frozen=True, slots=True)
class NewDelivery:
    event_id: str
    subject_id: str | None
    recipient: str
    payload: str  # the JSON body, fixed when the event is relayed


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    event_id: str
    subject_id: str | None
    recipient: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    acknowledged_at: datetime | None


def _row(row: Row[Any]) -> DeliveryRow:
    return record_of(DeliveryRow, row, id=int(row.id), attempts=int(row.attempts))


_COLUMNS = (
    "event_id",
    "subject_id",
    "recipient",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)
# The same text on SQLite and PostgreSQL: both skip a row whose (event, recipient) is there.
_ENQUEUE = text(
    f"INSERT INTO webhook_deliveries ({', '.join(_COLUMNS)}) "  # nosec B608 - constant columns
    f"VALUES ({', '.join(':' + name for name in _COLUMNS)}) "
    "ON CONFLICT (event_id, recipient) DO NOTHING"
).bindparams(
    bindparam("next_attempt_at", type_=UTCDateTime), bindparam("created_at", type_=UTCDateTime)
)


def enqueue(conn: Connection, items: Sequence[NewDelivery], now: datetime) -> int:
    """Insert deliveries (returns how many); one already there for the same event and
    recipient is kept as is (the relay publishes at least once, so it may plan it twice)."""
    if not items:
        return 0
    rows = [
        {
            "event_id": i.event_id,
            "subject_id": i.subject_id,
            "recipient": i.recipient,
            "payload": i.payload,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for i in items
    ]
    inserted = conn.execute(_ENQUEUE, rows).rowcount
    return inserted if inserted >= 0 else len(rows)  # some drivers do not count executemany


def claim_due(
    conn: Connection, now: datetime, lease_until: datetime, limit: int
) -> list[DeliveryRow]:
    """Up to ``limit`` open deliveries due by ``now``, leased until ``lease_until``."""
    query = (
        select(wd)
        .where(wd.c.status.in_(OPEN), wd.c.next_attempt_at <= now)
        .order_by(wd.c.next_attempt_at, wd.c.id)
        .limit(limit)
        # Locked on PostgreSQL, skipping rows another worker holds (SQLite: left out).
        .with_for_update(skip_locked=True)
    )
    rows = [_row(r) for r in conn.execute(query)]
    if rows:
        conn.execute(
            update(wd).where(wd.c.id.in_([r.id for r in rows])).values(next_attempt_at=lease_until)
        )
    return rows


def record_attempt(
    conn: Connection,
    delivery_id: int,
    lease: datetime,
    values: dict[str, Any],
) -> bool:
    """Store an attempt's outcome if the row still carries our lease; False otherwise."""
    if values.get("last_error"):
        values = {**values, "last_error": str(values["last_error"])[:ERROR_MAX]}
    done = conn.execute(
        update(wd)
        .where(wd.c.id == delivery_id, wd.c.next_attempt_at == lease, wd.c.status.in_(OPEN))
        .values(attempts=wd.c.attempts + 1, **values)
    )
    return done.rowcount == 1


def next_due(conn: Connection) -> datetime | None:
    when = conn.execute(select(func.min(wd.c.next_attempt_at)).where(wd.c.status.in_(OPEN)))
    value: datetime | None = when.scalar()
    return value


def get(conn: Connection, delivery_id: int) -> DeliveryRow | None:
    row = conn.execute(select(wd).where(wd.c.id == delivery_id)).first()
    return _row(row) if row is not None else None


def by_status(
    conn: Connection, statuses: Sequence[str], limit: int, after_id: int | None = None
) -> list[DeliveryRow]:
    query = select(wd).where(wd.c.status.in_(statuses))
    if after_id is not None:
        query = query.where(wd.c.id > after_id)
    return [_row(r) for r in conn.execute(query.order_by(wd.c.id).limit(limit))]


def for_subject(conn: Connection, subject_id: str, limit: int = 500) -> list[DeliveryRow]:
    query = (
        select(wd)
        .where(wd.c.subject_id == subject_id)
        .order_by(wd.c.created_at.desc(), wd.c.id.desc())
        .limit(limit)
    )
    return [_row(r) for r in conn.execute(query)]


def reopen(conn: Connection, delivery_id: int, now: datetime) -> DeliveryRow | None:
    """Give a delivery that is not acknowledged a fresh round of attempts, due now."""
    found = get(conn, delivery_id)
    if found is None or found.status == ACKNOWLEDGED:
        return found
    conn.execute(
        update(wd)
        .where(wd.c.id == delivery_id, wd.c.status != ACKNOWLEDGED)
        .values(
            status=SENT if found.sent_at is not None else PENDING,
            attempts=0,
            next_attempt_at=now,
        )
    )
    return get(conn, delivery_id)


def forget_subject(conn: Connection, subject_id: str) -> int:
    """Erasure: deliveries naming the subject go (the erasure notice, by reference, stays)."""
    return conn.execute(delete(wd).where(wd.c.subject_id == subject_id)).rowcount
