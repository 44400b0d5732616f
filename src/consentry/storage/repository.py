"""Reads and writes of the ledger and its projections, on one open connection.

The caller owns the transaction (see ``Database.write``): appending events, updating the
projection and writing the outbox happen in that one transaction or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from consentry.crypto import new_key
from consentry.domain import messages
from consentry.domain.events import GENESIS, Event, new_event_id
from consentry.domain.messages import JurisdictionSet, dumps
from consentry.domain.state import Choice, DeviceReport, SubjectState
from consentry.storage import changes, projection, pseudonyms
from consentry.storage.changes import Head as Head
from consentry.storage.rows import choice_of, choice_of_event, event_of
from consentry.storage.tables import (
    devices,
    events,
    idempotency_keys,
    outbox,
    permission_states,
    subject_keys,
    subjects,
)


def head(conn: Connection, subject_id: str) -> Head:
    row = conn.execute(
        select(subjects.c.head_seq, subjects.c.head_hash).where(subjects.c.subject_id == subject_id)
    ).first()
    if row is None:
        return Head(0, GENESIS, False)
    return Head(row.head_seq, row.head_hash, True)


def _device(row: Row[Any]) -> DeviceReport:
    return DeviceReport(
        device_id=row.device_id,
        platform=row.platform,
        app_version=row.app_version,
        os_permissions=json.loads(row.os_permissions),
        updated_at=row.updated_at,
    )


def load_state(conn: Connection, subject_id: str) -> SubjectState:
    """The subject's projected state, each row held to the chain; a subject never seen has no
    choices (all defaults)."""
    jurisdiction = conn.execute(
        select(subjects.c.jurisdiction).where(subjects.c.subject_id == subject_id)
    ).scalar()
    stored = {
        row.permission_id: choice_of(row)
        for row in conn.execute(
            select(permission_states).where(permission_states.c.subject_id == subject_id)
        )
    }
    choices = projection.checked(conn, subject_id, stored)  # held to the chain
    reports = {
        row.device_id: _device(row)
        for row in conn.execute(select(devices).where(devices.c.subject_id == subject_id))
    }
    return SubjectState(subject_id, jurisdiction, choices, reports)


def move_head(
    conn: Connection, expected: Head, last: Event, now: datetime, *, name: str, **extra: Any
) -> None:
    """Point the subject's head at ``last`` (and set ``extra`` columns) only if it is still at
    ``expected``: the optimistic-concurrency step of every write to a chain."""
    moved = conn.execute(
        update(subjects)
        .where(subjects.c.subject_ref == last.subject_ref, subjects.c.head_seq == expected.seq)
        .values(head_seq=last.seq, head_hash=last.hash, updated_at=now, **extra)
    )
    if moved.rowcount != 1:
        raise changes.conflict(name)


def subject_key(conn: Connection, ref: str, now: datetime | None = None) -> bytes | None:
    """The subject's sealing key; with ``now``, create it when missing."""
    key = conn.execute(select(subject_keys.c.key).where(subject_keys.c.subject_ref == ref)).scalar()
    if key is None and now is not None:
        key = new_key()
        conn.execute(insert(subject_keys).values(subject_ref=ref, key=key, created_at=now))
    return bytes(key) if key is not None else None


def ensure_subject(conn: Connection, subject_id: str, now: datetime) -> str:
    """The subject's reference; a subjects row without events yet (head at genesis) when the
    id has no live chain, e.g. to hold a jurisdiction."""
    return pseudonyms.resolve_or_create(conn, subject_id, now)


def set_jurisdiction(conn: Connection, subject_id: str, code: str | None, now: datetime) -> None:
    ref = ensure_subject(conn, subject_id, now)
    conn.execute(
        update(subjects)
        .where(subjects.c.subject_ref == ref)
        .values(jurisdiction=code, updated_at=now)
    )
    # Followers (SDK replicas) learn the new defaults from the feed, like any change.
    conn.execute(
        insert(outbox).values(
            event_id=new_event_id(),
            subject_id=subject_id,
            payload=messages.encode(JurisdictionSet(subject_id, code, ref)),
            created_at=now,
            published_at=None,
        )
    )


def history(conn: Connection, subject_id: str, limit: int, before_seq: int | None) -> list[Event]:
    query = select(events).where(events.c.subject_ref == pseudonyms.ref_of(subject_id))
    if before_seq is not None:
        query = query.where(events.c.seq < before_seq)
    query = query.order_by(events.c.seq.desc()).limit(limit)
    return [event_of(row) for row in conn.execute(query)]


def find_event(conn: Connection, subject_id: str, event_id: str) -> Event | None:
    """One of the subject's events by id; another subject's event is not found."""
    row = conn.execute(
        select(events).where(
            events.c.event_id == event_id,
            events.c.subject_ref == pseudonyms.ref_of(subject_id),
        )
    ).first()
    return event_of(row) if row is not None else None


def previous_on_permission(conn: Connection, event: Event) -> Event | None:
    """The event before ``event`` in the same chain on the same permission."""
    row = conn.execute(
        select(events)
        .where(
            events.c.subject_ref == event.subject_ref,
            events.c.permission_id == event.permission_id,
            events.c.seq < event.seq,
        )
        .order_by(events.c.seq.desc())
        .limit(1)
    ).first()
    return event_of(row) if row is not None else None


def events_after(conn: Connection, ref: str, after_seq: int, limit: int) -> list[Event]:
    """A page of one chain in order, for streaming exports without a long transaction."""
    query = (
        select(events)
        .where(events.c.subject_ref == ref, events.c.seq > after_seq)
        .order_by(events.c.seq)
        .limit(limit)
    )
    return [event_of(row) for row in conn.execute(query)]


def choice_at(
    conn: Connection, subject_id: str, permission_id: str, moment: datetime
) -> Choice | None:
    """The subject's choice on one permission as it stood at ``moment``, from the ledger."""
    row = conn.execute(
        select(events)
        .where(
            events.c.subject_ref == pseudonyms.ref_of(subject_id),
            events.c.permission_id == permission_id,
            events.c.occurred_at <= moment,
        )
        .order_by(events.c.seq.desc())
        .limit(1)
    ).first()
    return choice_of_event(row) if row is not None else None


def chain(conn: Connection, ref: str) -> Generator[Event, None, None]:
    """One subject's events in order, by ledger reference (erased subjects have no id)."""
    query = select(events).where(events.c.subject_ref == ref).order_by(events.c.seq)
    result = conn.execute(query.execution_options(yield_per=1000))
    try:
        for row in result:
            yield event_of(row)
    finally:
        result.close()


@dataclass(frozen=True, slots=True)
class ChainHead:
    ref: str
    subject_id: str | None
    head_hash: str


def subject_heads(conn: Connection, subject_id: str | None = None) -> Iterator[ChainHead]:
    query = select(subjects.c.subject_ref, subjects.c.subject_id, subjects.c.head_hash)
    if subject_id is not None:
        query = query.where(subjects.c.subject_id == subject_id)
    for row in conn.execute(query.order_by(subjects.c.subject_ref)):
        yield ChainHead(row.subject_ref, row.subject_id, row.head_hash)


def subject_heads_by_ref(conn: Connection, ref: str) -> Iterator[ChainHead]:
    query = select(subjects.c.subject_ref, subjects.c.subject_id, subjects.c.head_hash)
    for row in conn.execute(query.where(subjects.c.subject_ref == ref)):
        yield ChainHead(row.subject_ref, row.subject_id, row.head_hash)


def save_device(conn: Connection, report: DeviceReport, subject_id: str) -> None:
    values = {
        "platform": report.platform,
        "app_version": report.app_version,
        "os_permissions": dumps(report.os_permissions),
        "updated_at": report.updated_at,
    }
    changed = conn.execute(
        update(devices)
        .where(devices.c.subject_id == subject_id, devices.c.device_id == report.device_id)
        .values(**values)
    )
    if changed.rowcount == 0:
        conn.execute(
            insert(devices).values(subject_id=subject_id, device_id=report.device_id, **values)
        )


def list_devices(conn: Connection, subject_id: str) -> list[DeviceReport]:
    query = select(devices).where(devices.c.subject_id == subject_id).order_by(devices.c.device_id)
    return [_device(row) for row in conn.execute(query)]


def find_idempotent(
    conn: Connection, credential: str, key: str
) -> tuple[str, dict[str, Any]] | None:
    row = conn.execute(
        select(idempotency_keys.c.fingerprint, idempotency_keys.c.response).where(
            idempotency_keys.c.credential == credential, idempotency_keys.c.key == key
        )
    ).first()
    if row is None:
        return None
    return row.fingerprint, json.loads(row.response)


def save_idempotent(
    conn: Connection,
    credential: str,
    key: str,
    fingerprint: str,
    response: Mapping[str, Any],
    now: datetime,
    subject_id: str | None = None,
) -> None:
    conn.execute(
        insert(idempotency_keys).values(
            credential=credential,
            key=key,
            fingerprint=fingerprint,
            response=dumps(response),
            created_at=now,
            subject_id=subject_id,
        )
    )
