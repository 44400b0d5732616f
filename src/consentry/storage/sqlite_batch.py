"""SQLite: a batch of changes read and written on the driver's own connection.

The database is in this process, so a batch costs no round trips; what it saves is the work
around each statement. These statements go straight to ``sqlite3`` (prepared once, kept in the
connection's statement cache) in the caller's transaction: one read per change, then per
subject one guarded head move, and one ``executemany`` per table for the whole batch. A
statement that fails in SQLite undoes only itself, so a subject whose head had moved is
reported and the others are written.

Datetimes are stored as SQLAlchemy's ``UTCDateTime`` stores them on SQLite (naive UTC text,
``YYYY-MM-DD HH:MM:SS.ffffff``), so rows written here and through SQLAlchemy read the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from consentry.domain import messages
from consentry.domain.events import GENESIS
from consentry.storage import pseudonyms
from consentry.storage.changes import Ask, Current, Head, SubjectWrite, outbox_message
from consentry.storage.rows import (
    CHOICE_COLUMNS,
    EVENT_COLUMNS,
    choice_of_values,
    choice_row,
    event_row,
)

_DATETIMES = frozenset({"occurred_at", "expires_at", "updated_at", "created_at"})
_CHOICE_TIMES = frozenset(i for i, name in enumerate(CHOICE_COLUMNS) if name in _DATETIMES)


@lru_cache(maxsize=256)  # a batch's rows share their times
def stored(moment: datetime | None) -> str | None:
    """A datetime as ``UTCDateTime`` stores it on SQLite."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the database; use UTC-aware values")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _read(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if text is not None else None


_HEAD = "SELECT subject_ref, head_seq, head_hash, jurisdiction FROM subjects WHERE subject_id = ?"
_CHOICES = (
    f"SELECT {', '.join(CHOICE_COLUMNS)} FROM permission_states "  # nosec B608 - table's columns
    "WHERE subject_id = ? AND permission_id IN (SELECT value FROM json_each(?))"
)
_KEY = "SELECT scopes FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL"
_MOVE = (
    "UPDATE subjects SET head_seq = ?, head_hash = ?, updated_at = ?, subject_id = ? "
    "WHERE subject_ref = ? AND head_seq = ?"
)
_BORN = (
    "INSERT OR IGNORE INTO subjects (subject_ref, subject_id, jurisdiction, head_seq, head_hash, "
    "created_at, updated_at) VALUES (?, ?, NULL, ?, ?, ?, ?)"
)
_EVENTS = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "  # nosec B608 - table's columns
    f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)
_PROJECT = (
    f"INSERT INTO permission_states (subject_id, {', '.join(CHOICE_COLUMNS)}) "  # nosec B608
    f"VALUES (?, {', '.join('?' * len(CHOICE_COLUMNS))}) "
    "ON CONFLICT (subject_id, permission_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in CHOICE_COLUMNS[1:])
)
_OUTBOX = (
    "INSERT INTO outbox (event_id, subject_id, payload, created_at, published_at) "
    "VALUES (?, ?, ?, ?, NULL)"
)


def _driver(conn: Connection) -> Any:
    return conn.connection.driver_connection


def _values(row: dict[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    return tuple(stored(row[n]) if n in _DATETIMES else row[n] for n in names)


def current_many(conn: Connection, asks: Sequence[Ask]) -> list[Current]:
    """``Backend.current`` for each ask, in order, in the caller's transaction."""
    raw = _driver(conn)
    found: list[Current] = []
    for ask in asks:
        top = raw.execute(_HEAD, (ask.subject_id,)).fetchone()
        rows = raw.execute(
            _CHOICES, (ask.subject_id, json.dumps(list(ask.permission_ids)))
        ).fetchall()
        choices = {}
        for values in rows:
            choice = choice_of_values(
                [_read(v) if i in _CHOICE_TIMES else v for i, v in enumerate(values)]
            )
            choices[choice.permission_id] = choice
        scopes = None
        if ask.key_hash is not None:
            key = raw.execute(_KEY, (ask.key_hash,)).fetchone()
            scopes = frozenset(key[0].split()) if key is not None else None
        head = Head(top[1], top[2], True) if top is not None else Head(0, GENESIS, False)
        found.append(
            Current(
                head,
                top[3] if top is not None else None,
                choices,
                scopes,
                top[0] if top is not None else pseudonyms.new_ref(),
            )
        )
    return found


def write_many(conn: Connection, writes: Sequence[SubjectWrite]) -> set[str]:
    """Append each write after its expected head; the subjects whose head had moved (nothing
    of theirs written)."""
    raw = _driver(conn)
    moved: list[SubjectWrite] = []
    lost: set[str] = set()
    for w in writes:
        last, now = w.new[-1], stored(w.now)
        if w.expected.exists:
            done = raw.execute(
                _MOVE, (last.seq, last.hash, now, w.subject_id, w.ref, w.expected.seq)
            )
        else:
            done = raw.execute(_BORN, (w.ref, w.subject_id, last.seq, last.hash, now, now))
        if done.rowcount == 1:
            moved.append(w)
        else:
            lost.add(w.subject_id)
    raw.executemany(_EVENTS, [_values(event_row(e), EVENT_COLUMNS) for w in moved for e in w.new])
    raw.executemany(
        _PROJECT,
        [(w.subject_id, *_values(choice_row(c), CHOICE_COLUMNS)) for w in moved for c in w.choices],
    )
    raw.executemany(
        _OUTBOX,
        [
            (
                e.event_id,
                w.subject_id,
                messages.encode(outbox_message(w.subject_id, e)),
                stored(w.now),
            )
            for w in moved
            for e in w.new
        ],
    )
    return lost
