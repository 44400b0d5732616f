"""Reading the change feed (the outbox, in position order) and whole-state snapshots.

Cursor safety on PostgreSQL: ``position`` comes from a sequence, taken when a transaction
inserts its outbox row, but transactions commit in any order. A follower that reads
``position > cursor`` could see 11 committed while 10 is still in flight, move its cursor to
11, and never see 10. So when a read shows a hole below its highest position, we find the
transactions that hold a lock on ``outbox`` right now (any transaction that took a position and
has not ended holds one: the INSERT's RowExclusiveLock lasts until commit or rollback), wait
until they end, and read the range again. After that, every position up to the highest one
read is final: committed and visible, or rolled back for good. Without a hole there is nothing
to wait for. SQLite has one writer at a time, so positions commit in order there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text

from consentry.replica.core import ChoiceRow, timestamp
from consentry.replica.wire import format_cursor, parse_cursor
from consentry.storage.database import Database
from consentry.storage.outbox_prune import FLOOR
from consentry.storage.tables import feed_state, outbox, permission_states, subjects

SETTLE_TIMEOUT = 2.0
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


class CursorGone(Exception):
    """The cursor is not on this feed any more (too old, or from another database)."""


@dataclass(frozen=True, slots=True)
class Change:
    position: int
    event_id: str
    payload: dict[str, Any]
    raw: str  # the payload as stored (JSON text)

    @property
    def cursor(self) -> str:
        return format_cursor(self.position, self.event_id)


_Row = tuple[int, str, str]  # position, event id, payload


# Built once: every long poll of every follower runs one.
_ROWS = (
    select(outbox.c.position, outbox.c.event_id, outbox.c.payload)
    .where(outbox.c.position > bindparam("after"))
    .order_by(outbox.c.position)
    .limit(bindparam("limit"))
)
_ROWS_UPTO = _ROWS.where(outbox.c.position <= bindparam("upto"))


def _rows(conn: Connection, after: int, upto: int | None, limit: int) -> list[_Row]:
    query, params = (_ROWS, {}) if upto is None else (_ROWS_UPTO, {"upto": upto})
    found = conn.execute(query, {"after": after, "limit": limit, **params})
    return [(int(r.position), str(r.event_id), str(r.payload)) for r in found]


def _event_at(conn: Connection, position: int) -> str | None:
    found = conn.execute(select(outbox.c.event_id).where(outbox.c.position == position)).scalar()
    return None if found is None else str(found)


def _settle(db: Database, timeout: float) -> bool:
    """Wait until every transaction now holding a lock on the outbox has ended."""
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


# Where the feed ends, where its pruned part ends, and the event at the cursor: one statement.
_BOUNDS = select(
    select(func.coalesce(func.max(outbox.c.position), 0)).scalar_subquery(),
    select(feed_state.c.position).where(feed_state.c.name == FLOOR).scalar_subquery(),
    select(outbox.c.event_id).where(outbox.c.position == bindparam("after")).scalar_subquery(),
)


def head(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(outbox.c.position), 0))).scalar_one())


def read_changes(
    db: Database,
    cursor: str,
    limit: int = 1000,
    *,
    max_lag: int | None = None,
    settle_timeout: float = SETTLE_TIMEOUT,
) -> list[Change]:
    """Up to ``limit`` changes after the cursor, never skipping one that commits later.

    Raises CursorGone when the cursor is ahead of the feed (another database, or positions
    handed out again after rows were deleted), when the row it names was replaced, or when it
    is more than ``max_lag`` changes behind the head (a snapshot is the faster way back)."""
    after, seen = parse_cursor(cursor)
    # Two statements, each committing on its own (PostgreSQL): the bounds, then the rows.
    with db.read(statements_commit=True) as conn:
        last, floor, now_there = conn.execute(_BOUNDS, {"after": after}).one()
        if after > last or (max_lag is not None and last - after > max_lag):
            raise CursorGone(f"cursor {after} is not within the feed (head {last})")
        if after < (floor or 0):
            raise CursorGone(f"the changes up to position {floor} were pruned (cursor {after})")
        if seen is not None and now_there is not None and now_there != seen:
            raise CursorGone(f"the change at cursor {after} was replaced")
        rows = _rows(conn, after, None, limit)
    if rows and db.dialect == "postgresql" and rows[-1][0] - after != len(rows):
        # A hole: the rows before it are final, and are the answer; the rest comes with the
        # next read, by when the hole is most likely filled. Only a hole right after the cursor
        # (nothing before it) is waited out (``_settle``), so that a rolled-back position
        # never holds the follower back.
        upto = rows[-1][0]
        rows = _contiguous(after, rows)
        if not rows and _settle(db, settle_timeout):
            with db.read() as conn:
                rows = _rows(conn, after, upto, limit)
    return [Change(pos, eid, json.loads(payload), payload) for pos, eid, payload in rows]


def _contiguous(after: int, rows: list[_Row]) -> list[_Row]:
    out: list[_Row] = []
    for row in rows:
        if row[0] != after + len(out) + 1:
            break
        out.append(row)
    return out


def settled_head(db: Database, settle_timeout: float = SETTLE_TIMEOUT) -> str | None:
    """A cursor such that every change at or before it has committed (None: writers would
    not finish in time; retry)."""
    with db.read() as conn:
        last = head(conn)
        event_id = _event_at(conn, last) if last else None
    if db.dialect == "postgresql" and not _settle(db, settle_timeout):
        return None
    return format_cursor(last, event_id)


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
