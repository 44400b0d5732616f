"""Erasing a subject: remove everything keyed by their id, unlink and shred, keep the chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, or_, update

from consentry.domain import messages
from consentry.domain.events import Event
from consentry.domain.messages import Redacted, SubjectErased
from consentry.storage import preferences
from consentry.storage.changes import Head
from consentry.storage.deliveries import forget_subject
from consentry.storage.repository import move_head
from consentry.storage.rows import event_row
from consentry.storage.tables import (
    devices,
    events,
    idempotency_keys,
    outbox,
    permission_states,
    subject_keys,
    uses,
    web_sessions,
)


@dataclass(frozen=True, slots=True)
class Erased:
    permission_states: int
    devices: int
    outbox: int  # rows redacted
    uses: int
    idempotency_keys: int
    sessions: int
    deliveries: int
    preferences: int


def erase(conn: Connection, subject_id: str, expected: Head, event: Event, now: datetime) -> Erased:
    """Append the erasure event and remove the subject's personal data, in one transaction.

    The head moves with ``subject_id`` cleared: that column was the only link between the id
    and the chain's random reference (``pseudonyms``), so from here on the chain, the erasure
    notice and the redacted outbox rows are named by a reference nothing computes from the id.
    Followers learned the reference from the subject's earlier messages (or snapshot line)."""
    ref = event.subject_ref
    erased = {"subject_id": None, "jurisdiction": None, "erased_at": now}
    move_head(conn, expected, event, now, name=subject_id, **erased)
    conn.execute(insert(events).values(**event_row(event)))
    counts = Erased(
        permission_states=conn.execute(
            delete(permission_states).where(permission_states.c.subject_id == subject_id)
        ).rowcount,
        devices=conn.execute(delete(devices).where(devices.c.subject_id == subject_id)).rowcount,
        # Redacted, not deleted: positions stay, so followers of the feed skip nothing.
        outbox=conn.execute(
            update(outbox)
            .where(outbox.c.subject_id == subject_id)
            .values(
                subject_id=ref,
                payload=messages.encode(Redacted(ref)),
            )
        ).rowcount,
        uses=conn.execute(delete(uses).where(uses.c.subject_id == subject_id)).rowcount,
        # Answers stored for any credential about this subject, and the subject's own.
        idempotency_keys=conn.execute(
            delete(idempotency_keys).where(
                or_(
                    idempotency_keys.c.subject_id == subject_id,
                    idempotency_keys.c.credential == f"subject:{subject_id}",
                )
            )
        ).rowcount,
        sessions=conn.execute(
            delete(web_sessions).where(web_sessions.c.subject_id == subject_id)
        ).rowcount,
        deliveries=forget_subject(conn, subject_id),  # the erasure notice supersedes them
        preferences=preferences.forget(conn, subject_id),
    )
    conn.execute(delete(subject_keys).where(subject_keys.c.subject_ref == ref))
    conn.execute(
        insert(outbox).values(
            event_id=event.event_id,
            subject_id=ref,
            payload=messages.encode(
                SubjectErased(
                    subject_ref=ref,
                    seq=event.seq,
                    event_id=event.event_id,
                    source=event.source,
                    occurred_at=event.occurred_at.isoformat(),
                )
            ),
            created_at=now,
            published_at=None,
        )
    )
    return counts
