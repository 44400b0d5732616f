"""The SQL behind replication: the outbox read in position order, and whole-state snapshots.

``feed/`` decides what a cursor means and what a follower may be given; this module reads.

Cursor safety on PostgreSQL: ``position`` comes from a sequence, taken when a transaction
inserts its outbox row, but transactions commit in any order. A follower that reads
``position > cursor`` could see 11 committed while 10 is still in flight, move its cursor to
11, and never see 10. So when a read shows a hole below its highest position, ``settle`` finds
the transactions that hold a lock on ``outbox`` right now (any transaction that took a position
and has not ended holds one: the INSERT's RowExclusiveLock lasts until commit or rollback) and
waits until they end; the range is then read again. After that, every position up to the
highest one read is final: committed and visible, or rolled back for good. SQLite has one
writer at a time, so positions commit in order there (``commits_in_order``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text

from consentry.replica.chains import ChoiceRow, timestamp
from consentry.storage.database import Database
from consentry.storage.outbox_prune import FLOOR
from consentry.storage.tables import feed_state, outbox, permission_states, subjects

_POLL = 0.005

_HOLDERS = text(
    "SELECT DISTINCT virtualtransaction FROM pg_locks "
    "WHERE locktype = 'relation' AND relation = CAST(:rel AS regclass) "
    "AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()"
)
_STILL_HELD = text(
    "SELECT count(*) FROM pg_locks "
    "WHERE locktype = 'relation' AND relation = CAST(:rel AS regclass) "
    "AND virtualtransaction = ANY(:vxids)"
)

OutboxRow = tuple[int, str, str]  # position, event id, payload (JSON text as stored)


@dataclass(frozen=True, slots=True)
class FeedBounds:
    """Where the feed ends, where its pruned part ends, and the event at a position."""

    head: int
    floor: int | None  # None: nothing was ever pruned
    event_at: str | None  # the event id at the position asked about (None: no row there)


# Built once: every long poll of every follower runs one.
_ROWS = (
    select(outbox.c.position, outbox.c.event_id, outbox.c.payload)
    .where(outbox.c.position > bindparam("after"))
    .order_by(outbox.c.position)
    .limit(bindparam("limit"))
)
_ROWS_UPTO = _ROWS.where(outbox.c.position <= bindparam("upto"))

# The three bounds in one statement.
_BOUNDS = select(
    select(func.coalesce(func.max(outbox.c.position), 0)).scalar_subquery(),
    select(feed_state.c.position).where(feed_state.c.name == FLOOR).scalar_subquery(),
    select(outbox.c.event_id).where(outbox.c.position == bindparam("after")).scalar_subquery(),
)


def _rows(conn: Connection, after: int, upto: int | None, limit: int) -> list[OutboxRow]:
    query, params = (_ROWS, {}) if upto is None else (_ROWS_UPTO, {"upto": upto})
    found = conn.execute(query, {"after": after, "limit": limit, **params})
    return [(int(r.position), str(r.event_id), str(r.payload)) for r in found]


def read_after(
    db: Database, after: int, limit: int, check: Callable[[FeedBounds], None]
) -> list[OutboxRow]:
    """Up to ``limit`` outbox rows after ``after``, in position order, as they are visible now.
    ``check`` sees the feed's bounds first and raises to refuse the read. Two statements, each
    committing on its own (PostgreSQL): the bounds, then the rows."""
    with db.read(statements_commit=True) as conn:
        last, floor, now_there = conn.execute(_BOUNDS, {"after": after}).one()
        check(FeedBounds(int(last), floor, now_there))
        return _rows(conn, after, None, limit)


def read_range(db: Database, after: int, upto: int, limit: int) -> list[OutboxRow]:
    """Up to ``limit`` outbox rows with ``after < position <= upto``, in position order."""
    with db.read() as conn:
        return _rows(conn, after, upto, limit)


def commits_in_order(db: Database) -> bool:
    """Whether outbox positions become visible in position order (SQLite: one writer)."""
    return db.dialect != "postgresql"


def settle(db: Database, timeout: float) -> bool:
    """Wait until every transaction now holding a lock on the outbox has ended (False: not
    within ``timeout``). At once where positions commit in order."""
    if commits_in_order(db):
        return True
    with db.read() as conn:
        vxids = [str(v) for v in conn.execute(_HOLDERS, {"rel": outbox.name}).scalars()]
    if not vxids:
        return True
    deadline = time.monotonic() + timeout
    while True:
        with db.read() as conn:
            held = conn.execute(_STILL_HELD, {"rel": outbox.name, "vxids": vxids}).scalar()
        if not held:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)


def head(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(outbox.c.position), 0))).scalar_one())


def head_event(db: Database) -> tuple[int, str | None]:
    """The feed's last position and the event id there (0 and None on an empty feed)."""
    with db.read() as conn:
        last = head(conn)
        if not last:
            return last, None
        found = conn.execute(select(outbox.c.event_id).where(outbox.c.position == last)).scalar()
        return last, None if found is None else str(found)


@contextmanager
def consistent_read(db: Database) -> Iterator[Connection]:
    """A transaction that sees one snapshot of the whole database for all its statements."""
    with db.read_engine.connect() as conn:
        if db.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


@dataclass(frozen=True, slots=True)
class SubjectRecord:
    subject: str
    seq: int
    jurisdiction: str | None
    choices: list[ChoiceRow]
    ref: str | None = None


def _choice(row: Any) -> ChoiceRow:
    return (
        str(row.permission_id),
        str(row.state),
        str(row.notice_version),
        timestamp(row.expires_at),
    )


def subjects_in(conn: Connection) -> Iterator[SubjectRecord]:
    """Every subject with an id (erased ones have none) and its choices, by subject id."""
    query = (
        select(
            subjects.c.subject_id,
            subjects.c.subject_ref,
            subjects.c.head_seq,
            subjects.c.jurisdiction,
            permission_states.c.permission_id,
            permission_states.c.state,
            permission_states.c.notice_version,
            permission_states.c.expires_at,
        )
        .select_from(
            subjects.outerjoin(
                permission_states, permission_states.c.subject_id == subjects.c.subject_id
            )
        )
        .where(subjects.c.subject_id.is_not(None))
        .order_by(subjects.c.subject_id)
    )
    current: SubjectRecord | None = None
    for row in conn.execution_options(yield_per=5000).execute(query):
        if current is None or row.subject_id != current.subject:
            if current is not None:
                yield current
            current = SubjectRecord(
                row.subject_id, int(row.head_seq), row.jurisdiction, [], row.subject_ref
            )
        if row.permission_id is not None:
            current.choices.append(_choice(row))
    if current is not None:
        yield current


def count_subjects(conn: Connection) -> int:
    query = select(func.count()).select_from(subjects).where(subjects.c.subject_id.is_not(None))
    return int(conn.execute(query).scalar_one())


def load_subject(db: Database, subject_id: str) -> SubjectRecord | None:
    """One subject as stored now; None when there is no such subject (any more)."""
    with consistent_read(db) as conn:
        found = conn.execute(
            select(subjects.c.head_seq, subjects.c.jurisdiction, subjects.c.subject_ref).where(
                subjects.c.subject_id == subject_id
            )
        ).first()
        if found is None:
            return None
        rows = conn.execute(
            select(
                permission_states.c.permission_id,
                permission_states.c.state,
                permission_states.c.notice_version,
                permission_states.c.expires_at,
            ).where(permission_states.c.subject_id == subject_id)
        )
        return SubjectRecord(
            subject_id,
            int(found.head_seq),
            found.jurisdiction,
            [_choice(r) for r in rows],
            found.subject_ref,
        )
