"""Reading the change feed (the outbox, in position order) with cursors a follower can trust.

A cursor names a position and the event there (``replica/wire.py``). A read never skips a change
that commits later: where positions may commit out of order (PostgreSQL, see
``storage/replication.py``), a hole below the highest position read ends the answer before it,
and a hole right after the cursor is waited out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from consentry.replica.wire import format_cursor, parse_cursor
from consentry.storage import replication as stored
from consentry.storage.database import Database
from consentry.storage.replication import FeedBounds, OutboxRow, SubjectRecord

SETTLE_TIMEOUT = 2.0


class CursorGone(Exception):
    """The cursor is not on this feed any more (too old, or from another database)."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One change on the feed: an outbox row at its position."""

    position: int
    event_id: str
    payload: dict[str, Any]
    raw: str  # the payload as stored (JSON text)

    @property
    def cursor(self) -> str:
        return format_cursor(self.position, self.event_id)


def read_changes(
    db: Database,
    cursor: str,
    limit: int = 1000,
    *,
    max_lag: int | None = None,
    settle_timeout: float = SETTLE_TIMEOUT,
) -> list[FeedEntry]:
    """Up to ``limit`` changes after the cursor, never skipping one that commits later.

    Raises CursorGone when the cursor is ahead of the feed (another database, or positions
    handed out again after rows were deleted), when the row it names was replaced, or when it
    is more than ``max_lag`` changes behind the head (a snapshot is the faster way back)."""
    after, seen = parse_cursor(cursor)

    def check(bounds: FeedBounds) -> None:
        last, floor = bounds.head, bounds.floor
        if after > last or (max_lag is not None and last - after > max_lag):
            raise CursorGone(f"cursor {after} is not within the feed (head {last})")
        if after < (floor or 0):
            raise CursorGone(f"the changes up to position {floor} were pruned (cursor {after})")
        if seen is not None and bounds.event_at is not None and bounds.event_at != seen:
            raise CursorGone(f"the change at cursor {after} was replaced")

    rows = stored.read_after(db, after, limit, check)
    if rows and rows[-1][0] - after != len(rows) and not stored.commits_in_order(db):
        # A hole: the rows before it are final, and are the answer; the rest comes with the
        # next read, by when the hole is most likely filled. Only a hole right after the cursor
        # (nothing before it) is waited out (``settle``), so that a rolled-back position
        # never holds the follower back.
        upto = rows[-1][0]
        rows = _contiguous(after, rows)
        if not rows and stored.settle(db, settle_timeout):
            rows = stored.read_range(db, after, upto, limit)
    return [FeedEntry(pos, eid, json.loads(payload), payload) for pos, eid, payload in rows]


def _contiguous(after: int, rows: list[OutboxRow]) -> list[OutboxRow]:
    out: list[OutboxRow] = []
    for row in rows:
        if row[0] != after + len(out) + 1:
            break
        out.append(row)
    return out


def settled_head(db: Database, settle_timeout: float = SETTLE_TIMEOUT) -> str | None:
    """A cursor such that every change at or before it has committed (None: writers would
    not finish in time; retry)."""
    last, event_id = stored.head_event(db)
    if not stored.settle(db, settle_timeout):
        return None
    return format_cursor(last, event_id)


class Snapshot:
    """Every subject's choices as of one moment (``snapshot``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def count(self) -> int:
        """How many subjects ``subjects`` yields."""
        return stored.count_subjects(self._conn)

    def subjects(self) -> Iterator[SubjectRecord]:
        """Every subject with an id (erased ones have none) and its choices, by subject id."""
        return stored.subjects_in(self._conn)


@contextmanager
def snapshot(db: Database) -> Iterator[Snapshot]:
    """One consistent view of the whole state; it holds what ``settled_head`` returned before
    it began (and possibly a little more, which the feed then repeats)."""
    with stored.consistent_read(db) as conn:
        yield Snapshot(conn)
