"""SQLite: the embedded backend, a database file in this process (``backend.Backend``).

No round trips to save, so a change's write is one statement per table (``write``), SQLAlchemy
Core statements compiled once per engine; its read is one statement, plus one for the writer's
service key. Writers take the database lock up front (``BEGIN IMMEDIATE``) and queue.
"""

from __future__ import annotations

import fcntl
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    and_,
    bindparam,
    create_engine,
    event,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from consentry.domain import messages
from consentry.domain.events import GENESIS, Event
from consentry.domain.state import Choice
from consentry.storage import bulk_sqlite, keys, outbox, pseudonyms, sqlite_batch
from consentry.storage.backend import RelayBusy
from consentry.storage.bulk_rows import BulkWriter
from consentry.storage.changes import (
    Ask,
    Current,
    Head,
    SubjectWrite,
    conflict,
    outbox_message,
)
from consentry.storage.keys import KeyRecord
from consentry.storage.outbox import OutboxMessage
from consentry.storage.rows import CHOICE_COLUMNS, choice_of, choice_row, event_row
from consentry.storage.tables import UTCDateTime, events, permission_states, subjects
from consentry.storage.tables import outbox as outbox_table

# Connections kept open per engine: the PRAGMAs run once per connection, not per transaction,
# and closing the last connection to a WAL database would checkpoint the log each time.
POOL_SIZE = 8


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int = POOL_SIZE) -> Engine:
    pooled = {} if ":memory:" in url else {"pool_size": pool_size, "max_overflow": 32}
    engine = create_engine(url, **pooled)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten with zeros, not left in free space of the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front so two writers queue instead of deadlocking.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# -- a change: the read ------------------------------------------------------------------------

# One row even for a subject never seen: the subject's row (if any) and each of the asked
# permissions' projected choices (if any), joined to a constant.
_anchor = select(literal(1, Integer).label("one")).subquery("anchor")
_CURRENT = select(
    subjects.c.subject_ref,
    subjects.c.head_seq,
    subjects.c.head_hash,
    subjects.c.jurisdiction,
    *(permission_states.c[name] for name in CHOICE_COLUMNS),
).select_from(
    _anchor.outerjoin(subjects, subjects.c.subject_id == bindparam("sid")).outerjoin(
        permission_states,
        and_(
            permission_states.c.subject_id == bindparam("sid"),
            permission_states.c.permission_id.in_(bindparam("pids", expanding=True)),
        ),
    )
)


def current(
    conn: Connection,
    subject_id: str,
    permission_ids: Sequence[str],
    key_hash: str | None = None,
) -> Current:
    params = {"sid": subject_id, "pids": list(permission_ids)}
    found = conn.execute(_CURRENT, params).all()
    top = found[0]
    head = (
        Head(top.head_seq, top.head_hash, True)
        if top.head_seq is not None
        else Head(0, GENESIS, False)
    )
    key = keys.find_by_hash(conn, key_hash) if key_hash is not None else None
    return Current(
        head,
        top.jurisdiction,
        {row.permission_id: choice_of(row) for row in found if row.permission_id is not None},
        key.scopes if key is not None and key.revoked_at is None else None,
        top.subject_ref or pseudonyms.new_ref(),
    )


# -- a change: the write, one statement per table -----------------------------------------------

_MOVE_HEAD = (
    update(subjects)
    .where(
        subjects.c.subject_ref == bindparam("b_ref"), subjects.c.head_seq == bindparam("b_expected")
    )
    .values(
        head_seq=bindparam("b_seq"),
        head_hash=bindparam("b_hash"),
        updated_at=bindparam("b_now", type_=UTCDateTime),
        subject_id=bindparam("b_sid"),
    )
)
_INSERT_SUBJECT = insert(subjects)
_INSERT_EVENTS = insert(events)
_INSERT_OUTBOX = insert(outbox_table)
_upsert = sqlite.insert(permission_states)
_PROJECT = _upsert.on_conflict_do_update(
    index_elements=[permission_states.c.subject_id, permission_states.c.permission_id],
    set_={name: _upsert.excluded[name] for name in CHOICE_COLUMNS[1:]},
)


def write(
    conn: Connection,
    subject_id: str,
    expected: Head,
    new: Sequence[Event],
    now: datetime,
    choices: Sequence[Choice],
) -> None:
    last = new[-1]
    if expected.exists:
        moved = conn.execute(
            _MOVE_HEAD,
            {
                "b_ref": last.subject_ref,
                "b_expected": expected.seq,
                "b_seq": last.seq,
                "b_hash": last.hash,
                "b_now": now,
                "b_sid": subject_id,
            },
        )
        if moved.rowcount != 1:
            raise conflict(subject_id)
    else:
        conn.execute(
            _INSERT_SUBJECT,
            {
                "subject_ref": last.subject_ref,
                "subject_id": subject_id,
                "jurisdiction": None,
                "head_seq": last.seq,
                "head_hash": last.hash,
                "created_at": now,
                "updated_at": now,
            },
        )
    conn.execute(_INSERT_EVENTS, [event_row(e) for e in new])
    if choices:
        conn.execute(_PROJECT, [{"subject_id": subject_id, **choice_row(c)} for c in choices])
    conn.execute(
        _INSERT_OUTBOX,
        [
            {
                "event_id": e.event_id,
                "subject_id": subject_id,
                "payload": messages.encode(outbox_message(subject_id, e)),
                "created_at": now,
                "published_at": None,
            }
            for e in new
        ],
    )


# -- the relay: one per database file ------------------------------------------------------------


def _relay_lock(url: str) -> IO[bytes] | None:
    """Hold ``<file>.relay.lock`` for as long as the relay runs (raises RelayBusy when another
    process has it); None for a database in memory."""
    name = make_url(url).database
    if not name or name == ":memory:":
        return None
    handle = Path(f"{name}.relay.lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise RelayBusy(f"another relay runs on {name}") from exc
    return handle


class SqliteBackend:
    name = "sqlite"
    in_process = True
    locks_rows = False
    statements_commit = False
    bulk: BulkWriter = bulk_sqlite  # the statements of a bulk import

    def engines(self, url: str) -> tuple[Engine, Engine]:
        return _sqlite_engine(url, immediate=True), _sqlite_engine(url, immediate=False)

    def writer_engine(self, url: str, name: str) -> Engine:
        return _sqlite_engine(url, immediate=True, pool_size=1)

    def flush_log(self, engine: Engine) -> None:
        """Copy the write-ahead log into the database file and empty it, so page images
        written before (an erased subject's rows among them) leave the disk; a reader still
        holding old pages makes it partial, and the next call finishes it."""
        raw = engine.raw_connection()  # outside a transaction: BEGIN would block it
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()

    def relay_lock(self, url: str) -> IO[bytes] | None:
        return _relay_lock(url)

    def current(
        self,
        conn: Connection,
        subject_id: str,
        permission_ids: Sequence[str],
        key_hash: str | None = None,
    ) -> Current:
        return current(conn, subject_id, permission_ids, key_hash)

    def write(
        self,
        conn: Connection,
        subject_id: str,
        expected: Head,
        new: Sequence[Event],
        now: datetime,
        choices: Sequence[Choice] = (),
    ) -> None:
        if new:
            write(conn, subject_id, expected, new, now, choices)

    def current_many(self, conn: Connection, asks: Sequence[Ask]) -> list[Current]:
        return sqlite_batch.current_many(conn, asks)

    def write_many(self, conn: Connection, writes: Sequence[SubjectWrite]) -> set[str]:
        return sqlite_batch.write_many(conn, writes) if writes else set()

    def find_key(self, conn: Connection, key_hash: str) -> KeyRecord | None:
        return keys.find_by_hash(conn, key_hash)

    def outbox_in_order(
        self, conn: Connection, batch: Sequence[OutboxMessage]
    ) -> list[OutboxMessage]:
        return outbox.in_order(conn, batch, _ELSEWHERE)

    def mark_published(self, conn: Connection, positions: Sequence[int], now: datetime) -> int:
        return outbox.mark_published(conn, positions, now, _MARK)

    def pass_cursor(self, driver: Any, name: str) -> Any:
        return driver.cursor()

    def param(self, name: str) -> str:
        return f":{name}"


# Lists expanded into IN (...).
_ELSEWHERE = outbox.elsewhere(outbox.POSITIONS, outbox.SUBJECTS)
_MARK = outbox.mark(outbox.POSITIONS)
BACKEND = SqliteBackend()
