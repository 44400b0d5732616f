"""Claiming outbox rows for the relay, and the shard a subject's changes go to.

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

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Connection, String, any_, bindparam, func, select, update

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


def shard_of(key: str, shards: int) -> int:
    """A stable shard for a subject key (the same in every process and language)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % shards


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
# than running it (SQLAlchemy caches the compiled form of each).
_CLAIM = (
    select(outbox.c.position, outbox.c.event_id, outbox.c.subject_id, outbox.c.payload)
    .where(outbox.c.published_at.is_(None), outbox.c.position >= bindparam("floor"))
    .order_by(outbox.c.position)
    .limit(bindparam("limit"))
)
_CLAIM_LOCKED = _CLAIM.with_for_update(skip_locked=True)


def _elsewhere(positions: Any, subjects: Any) -> Any:
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


def _mark(positions: Any) -> Any:
    return (
        update(outbox)
        .where(positions, outbox.c.published_at.is_(None))
        .values(published_at=bindparam("now", type_=UTCDateTime))
    )


# Lists of positions and subjects: expanded into IN (...) on SQLite; one array parameter on
# PostgreSQL, so that the statement's text is the same whatever the batch (the driver
# prepares it, the server plans it once).
_POSITIONS = outbox.c.position.in_(bindparam("positions", expanding=True))
_SUBJECTS = outbox.c.subject_id.in_(bindparam("subjects", expanding=True))
_POSITIONS_ARRAY = outbox.c.position == any_(bindparam("positions", type_=ARRAY(BigInteger)))
_SUBJECTS_ARRAY = outbox.c.subject_id == any_(bindparam("subjects", type_=ARRAY(String)))
_ELSEWHERE = _elsewhere(_POSITIONS, _SUBJECTS)
_ELSEWHERE_ARRAY = _elsewhere(_POSITIONS_ARRAY, _SUBJECTS_ARRAY)
_STILL_UNPUBLISHED = select(outbox.c.position).where(_POSITIONS, outbox.c.published_at.is_(None))
_MARK = _mark(_POSITIONS)
_MARK_ARRAY = _mark(_POSITIONS_ARRAY)


def claim(conn: Connection, limit: int, floor: int = 0) -> list[OutboxMessage]:
    """The oldest unpublished rows from position ``floor`` on, in position order (locked on
    PostgreSQL, skipping rows another relay holds)."""
    query = _CLAIM_LOCKED if conn.dialect.name == "postgresql" else _CLAIM
    return [
        _message(int(r.position), r.event_id, r.subject_id, r.payload)
        for r in conn.execute(query, {"floor": floor, "limit": limit})
    ]


def in_order(conn: Connection, batch: Sequence[OutboxMessage]) -> list[OutboxMessage]:
    """The part of a claimed batch that can go out now: a subject's rows that come before any
    unpublished row of that subject outside the batch (one another relay holds)."""
    if not batch:
        return []
    positions = [m.position for m in batch]
    params = {
        "top": max(positions),
        "subjects": sorted({m.subject_id for m in batch}),
        "positions": positions,
    }
    query = _ELSEWHERE_ARRAY if conn.dialect.name == "postgresql" else _ELSEWHERE
    elsewhere = {str(subject): int(first) for subject, first in conn.execute(query, params)}
    return [m for m in batch if m.position < elsewhere.get(m.subject_id, m.position + 1)]


def still_unpublished(conn: Connection, positions: Sequence[int]) -> set[int]:
    """Which of these rows are still there and unpublished (erasure deletes a subject's rows)."""
    if not positions:
        return set()
    found = conn.execute(_STILL_UNPUBLISHED, {"positions": list(positions)}).scalars()
    return {int(p) for p in found}


def mark_published(conn: Connection, positions: Sequence[int], now: datetime) -> int:
    if not positions:
        return 0
    query = _MARK_ARRAY if conn.dialect.name == "postgresql" else _MARK
    return conn.execute(query, {"positions": list(positions), "now": now}).rowcount
