"""Rows of the checkpoint log, and the reads a checkpoint and its verification stream."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from consentry.storage.tables import checkpoints, events, permission_states, subjects


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    number: int
    tree_size: int
    root: str
    created_at: datetime
    body: str


def _streamed(conn: Connection, query: Any) -> Generator[Any, None, None]:
    """Rows of a big query a batch at a time; the cursor closed however the caller stops."""
    result = conn.execution_options(yield_per=10_000).execute(query)
    try:
        yield from result
    finally:
        result.close()


def heads(conn: Connection) -> Iterator[tuple[str, int, str]]:
    """(reference, head seq, head hash) of every chain, by reference."""
    query = select(subjects.c.subject_ref, subjects.c.head_seq, subjects.c.head_hash).order_by(
        subjects.c.subject_ref
    )
    for row in _streamed(conn, query):
        yield row[0], row[1], row[2]


def all_checkpoints(conn: Connection) -> list[CheckpointRow]:
    query = select(
        checkpoints.c.number,
        checkpoints.c.tree_size,
        checkpoints.c.root,
        checkpoints.c.created_at,
        checkpoints.c.body,
    ).order_by(checkpoints.c.number)
    return [CheckpointRow(*row) for row in conn.execute(query)]


def leaves_of(conn: Connection, number: int) -> bytes | None:
    found = conn.execute(select(checkpoints.c.leaves).where(checkpoints.c.number == number))
    value = found.scalar()
    return bytes(value) if value is not None else None


def save(conn: Connection, row: CheckpointRow, leaves: bytes) -> None:
    """Store a checkpoint; the leaves of all but it and the one before are dropped."""
    conn.execute(
        insert(checkpoints).values(
            number=row.number,
            tree_size=row.tree_size,
            root=row.root,
            created_at=row.created_at,
            body=row.body,
            leaves=leaves,
        )
    )
    conn.execute(
        update(checkpoints).where(checkpoints.c.number < row.number - 1).values(leaves=None)
    )


def all_events(conn: Connection, ref: str | None = None) -> Generator[Any, None, None]:
    """Every event by (reference, seq): the whole ledger in one pass."""
    query = select(events).order_by(events.c.subject_ref, events.c.seq)
    if ref is not None:
        query = query.where(events.c.subject_ref == ref)
    yield from _streamed(conn, query)


def subject_rows(conn: Connection, ref: str | None = None) -> Generator[Any, None, None]:
    query = select(
        subjects.c.subject_ref, subjects.c.subject_id, subjects.c.head_seq, subjects.c.head_hash
    ).order_by(subjects.c.subject_ref)
    if ref is not None:
        query = query.where(subjects.c.subject_ref == ref)
    yield from _streamed(conn, query)


def projection_rows(conn: Connection, subject_id: str | None = None) -> Generator[Any, None, None]:
    """Every projection row with its chain's reference (None: no live chain has its id), by
    reference then permission."""
    query = (
        select(
            subjects.c.subject_ref,
            permission_states.c.subject_id,
            permission_states.c.permission_id,
            permission_states.c.state,
            permission_states.c.notice_version,
            permission_states.c.expires_at,
            permission_states.c.event_id,
        )
        .select_from(
            permission_states.outerjoin(
                subjects, subjects.c.subject_id == permission_states.c.subject_id
            )
        )
        .order_by(subjects.c.subject_ref, permission_states.c.permission_id)
    )
    if subject_id is not None:
        query = query.where(permission_states.c.subject_id == subject_id)
    yield from _streamed(conn, query)
