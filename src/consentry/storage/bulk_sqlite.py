"""SQLite side of ``bulk`` (a ``bulk_rows.BulkWriter``): chunked ``IN`` lookups and
``executemany`` on the driver's cursor.

The caller's transaction is ``BEGIN IMMEDIATE`` (``Database.write``): it holds the database's
one writer lock, so no live change interleaves with the batch. Times are stored as SQLAlchemy
stores ``UTCDateTime`` on SQLite: naive UTC text with microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from consentry.storage.bulk_rows import EVENT_COLUMNS, STATE_COLUMNS, HeadRow, Plan

_CHUNK = 900  # bound parameters per lookup, below every SQLite build's limit
CACHE_KB = 64 * 1024  # the import connection's page cache


def prepare(conn: Connection) -> None:
    """A larger page cache for a connection that will write many batches."""
    raw: Any = conn.connection.driver_connection  # no transaction for a PRAGMA
    raw.execute(f"PRAGMA cache_size = -{CACHE_KB}")


def _stamp(moment: datetime) -> str:
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} {moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}"
    )


def _cursor(conn: Connection) -> Any:
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _lookup(conn: Connection, sql: str, values: Sequence[str]) -> list[tuple[Any, ...]]:
    cursor = _cursor(conn)
    found: list[tuple[Any, ...]] = []
    for part in _chunks(values):
        marks = ",".join("?" * len(part))
        found.extend(cursor.execute(sql.format(marks=marks), tuple(part)).fetchall())
    return found


def lock_heads(conn: Connection, refs: Sequence[str]) -> dict[str, HeadRow]:
    sql = (
        "SELECT subject_ref, head_seq, head_hash, erased_at IS NOT NULL FROM subjects "
        "WHERE subject_ref IN ({marks})"
    )
    return {ref: HeadRow(seq, h, bool(erased)) for ref, seq, h, erased in _lookup(conn, sql, refs)}


def present(conn: Connection, event_ids: Sequence[str]) -> set[str]:
    sql = "SELECT event_id FROM events WHERE event_id IN ({marks})"
    return {row[0] for row in _lookup(conn, sql, event_ids)}


def held(conn: Connection, subject_ids: Sequence[str]) -> dict[tuple[str, str], datetime]:
    sql = (
        "SELECT subject_id, permission_id, updated_at FROM permission_states "
        "WHERE subject_id IN ({marks})"
    )
    return {
        (sid, pid): datetime.fromisoformat(at).replace(tzinfo=UTC)
        for sid, pid, at in _lookup(conn, sql, subject_ids)
    }


def subject_keys(conn: Connection, refs: Sequence[str]) -> dict[str, bytes]:
    sql = "SELECT subject_ref, key FROM subject_keys WHERE subject_ref IN ({marks})"
    return {ref: bytes(key) for ref, key in _lookup(conn, sql, refs)}


def _insert(table: str, columns: str, tail: str = "") -> str:
    count = columns.count(",") + 1
    return f"INSERT INTO {table} ({columns}) VALUES ({','.join('?' * count)}){tail}"  # nosec B608


# A time of the plan (iso_z text: 2024-05-01T10:00:00.000000Z) as SQLite keeps times
# (2024-05-01 10:00:00.000000), converted by SQLite itself.
_TIME = "replace(substr(?, 1, 26), 'T', ' ')"
# The plan's event rows as they are: no channel, no expiry.
_EVENTS = (
    f"INSERT INTO events ({EVENT_COLUMNS}) "  # nosec B608
    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, {_TIME}, NULL, ?, ?)"
)
_OUTBOX = _insert("outbox", "event_id, subject_id, payload, created_at")
_KEYS = _insert("subject_keys", "subject_ref, key, created_at")
_SUBJECTS = _insert(
    "subjects", "subject_ref, subject_id, head_seq, head_hash, created_at, updated_at"
)
_MOVE = (
    "UPDATE subjects SET head_seq = ?, head_hash = ?, subject_id = ?, updated_at = ? "
    "WHERE subject_ref = ?"
)
_STATE_VALUES = f"VALUES (?, ?, ?, ?, ?, ?, {_TIME}, NULL, ?)"
_STATES = f"INSERT INTO permission_states ({STATE_COLUMNS}) {_STATE_VALUES}"  # nosec B608
_MERGE = (
    f"INSERT INTO permission_states ({STATE_COLUMNS}) {_STATE_VALUES}"  # nosec B608
    " ON CONFLICT (subject_id, permission_id) DO UPDATE SET state = excluded.state, "
    "options = excluded.options, notice_version = excluded.notice_version, "
    "source = excluded.source, updated_at = excluded.updated_at, "
    "expires_at = excluded.expires_at, event_id = excluded.event_id"
)


def write(conn: Connection, rows: Plan, now: datetime) -> None:
    cursor = _cursor(conn)
    stamp = _stamp(now)
    if rows.keys_new:
        cursor.executemany(_KEYS, [(ref, key, stamp) for ref, key in rows.keys_new])
    if rows.heads_new:
        cursor.executemany(
            _SUBJECTS, [(ref, sid, seq, h, stamp, stamp) for ref, sid, seq, h in rows.heads_new]
        )
    if rows.heads_moved:
        cursor.executemany(
            _MOVE, [(seq, h, sid, stamp, ref) for ref, sid, seq, h in rows.heads_moved]
        )
    cursor.executemany(_EVENTS, rows.events)
    cursor.executemany(_OUTBOX, [(e, s, p, stamp) for e, s, p in rows.outbox])
    for many, sql in ((rows.states_fresh, _STATES), (rows.states_merge, _MERGE)):
        if many:
            cursor.executemany(sql, many)
