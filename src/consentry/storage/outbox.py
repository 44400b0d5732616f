"""Claiming outbox rows for the relay: the statements both backends share, and the helpers
each backend runs with its own form of the rest (``sqlite.py``, ``postgres.py``).

Every message of a subject, erasure included, is keyed by its chain's reference
(``subject_ref``, random: ``storage/pseudonyms.py``), so all of them land on one shard, in order.

On PostgreSQL several relays claim rows with ``FOR UPDATE SKIP LOCKED``. Skipping locked rows
alone would let relay B publish a subject's newer event while relay A still holds an older
one, so a claim publishes a subject's rows only up to the first unpublished row of that subject
it did not get (``in_order``); the rest wait for the next round. Rows of one subject are never in
flight in two places, and their positions follow their commit order (each write of a subject
updates its ``subjects`` row first, so writers of one subject queue on that row lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from consentry.domain.messages import MalformedMessage, Message, decode
from consentry.storage.tables import UTCDateTime, outbox


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    position: int
    event_id: str
    subject_id: str  # the outbox row's column: the subject id, or the reference after erasure
    key: str  # the subject's ledger reference: what the shard is computed from
    message: Message | None  # None: a row no reader understands (published as it is)
    raw: str  # the message as stored (JSON text)


def subject_key(subject_id: str, message: Message | None) -> str:
    """The chain's reference every message of a subject carries (the row's column for a row
    written before messages carried it)."""
    ref = message.subject_ref if message is not None else None
    return ref if ref else subject_id


def _message(position: int, event_id: str, subject_id: str, raw: str) -> OutboxMessage:
    try:
        message: Message | None = decode(raw)
    except MalformedMessage:
        message = None
    return OutboxMessage(
        position=position,
        event_id=event_id,
        subject_id=subject_id,
        key=subject_key(subject_id, message),
        message=message,
        raw=raw,
    )


# Built once: the relay runs these on every round, and building a statement costs more CPU
# than running it (SQLAlchemy caches the compiled form of each). Locked on PostgreSQL, skipping
# rows another relay holds (SQLite has no row locks: its compiler leaves the clause out).
_CLAIM = (
    select(outbox.c.position, outbox.c.event_id, outbox.c.subject_id, outbox.c.payload)
    .where(outbox.c.published_at.is_(None), outbox.c.position >= bindparam("floor"))
    .order_by(outbox.c.position)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


def elsewhere(positions: Any, subjects: Any) -> Any:
    """The first unpublished position of each of the batch's subjects outside the batch,
    below its top (``positions``, ``subjects``: the backend's form of the two lists)."""
    return (
        select(outbox.c.subject_id, func.min(outbox.c.position))
        .where(
            outbox.c.published_at.is_(None),
            outbox.c.position < bindparam("top"),
            subjects,
            ~positions,
        )
        .group_by(outbox.c.subject_id)
    )


def mark(positions: Any) -> Any:
    """Mark rows published (``positions``: the backend's form of the list)."""
    return (
        update(outbox)
        .where(positions, outbox.c.published_at.is_(None))
        .values(published_at=bindparam("now", type_=UTCDateTime))
    )


# Lists expanded into IN (...): SQLite's form (PostgreSQL's is one array parameter).
POSITIONS = outbox.c.position.in_(bindparam("positions", expanding=True))
SUBJECTS = outbox.c.subject_id.in_(bindparam("subjects", expanding=True))
_STILL_UNPUBLISHED = select(outbox.c.position).where(POSITIONS, outbox.c.published_at.is_(None))


def claim(conn: Connection, limit: int, floor: int = 0) -> list[OutboxMessage]:
    """The oldest unpublished rows from position ``floor`` on, in position order (locked on
    PostgreSQL, skipping rows another relay holds)."""
    return [
        _message(int(r.position), r.event_id, r.subject_id, r.payload)
        for r in conn.execute(_CLAIM, {"floor": floor, "limit": limit})
    ]


def in_order(conn: Connection, batch: Sequence[OutboxMessage], query: Any) -> list[OutboxMessage]:
    """The part of a claimed batch that can go out now: a subject's rows that come before any
    unpublished row of that subject outside the batch (one another relay holds). ``query``:
    the backend's ``elsewhere``."""
    if not batch:
        return []
    positions = [m.position for m in batch]
    params = {
        "top": max(positions),
        "subjects": sorted({m.subject_id for m in batch}),
        "positions": positions,
    }
    found = {str(subject): int(first) for subject, first in conn.execute(query, params)}
    return [m for m in batch if m.position < found.get(m.subject_id, m.position + 1)]


def still_unpublished(conn: Connection, positions: Sequence[int]) -> set[int]:
    """Which of these rows are still there and unpublished (erasure deletes a subject's rows)."""
    if not positions:
        return set()
    found = conn.execute(_STILL_UNPUBLISHED, {"positions": list(positions)}).scalars()
    return {int(p) for p in found}


def mark_published(conn: Connection, positions: Sequence[int], now: datetime, query: Any) -> int:
    """Mark rows published; ``query``: the backend's ``mark``."""
    if not positions:
        return 0
    return conn.execute(query, {"positions": list(positions), "now": now}).rowcount
