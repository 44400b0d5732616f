"""Rows of the checkpoint log, and the reads a checkpoint and its verification stream."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from consentry.storage.database import Database, backend_of
from consentry.storage.tables import checkpoints, subjects

# The PostgreSQL advisory lock that elects the one process making the periodic checkpoint:
# this number ("ckpt") and the hash of the schema the tables are in (one ledger, one lock).
ELECTION_LOCK = int.from_bytes(b"ckpt", "big")


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


def _raw(conn: Connection, sql: str, params: dict[str, Any]) -> Generator[Any, None, None]:
    """As ``_streamed``, for a statement whose rows need no conversion: tuples straight from
    the driver, in the connection's transaction (a server-side cursor on PostgreSQL). The
    passes over a whole ledger are dominated by per-row work."""
    driver: Any = conn.connection.driver_connection
    cursor = backend_of(conn).pass_cursor(driver, f"consentry_pass_{id(params)}")
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(10_000):
            yield from rows
    finally:
        cursor.close()


@contextmanager
def elected(db: Database) -> Iterator[bool]:
    """Whether this process makes the periodic checkpoint now: on PostgreSQL, True for the one
    process holding the election lock (a transaction-scoped advisory lock, held until the block
    ends; the others get False at once rather than wait); on SQLite always True (the write
    transaction that stores a checkpoint is exclusive, and is where the caller re-checks)."""
    if db.dialect != "postgresql":
        yield True
        return
    with db.read() as conn:
        query = text("SELECT pg_try_advisory_xact_lock(:key, hashtext(current_schema()))")
        yield bool(conn.execute(query, {"key": ELECTION_LOCK}).scalar())


def newest(conn: Connection) -> CheckpointRow | None:
    """The newest checkpoint, without its body's leaves."""
    query = (
        select(
            checkpoints.c.number,
            checkpoints.c.tree_size,
            checkpoints.c.root,
            checkpoints.c.created_at,
            checkpoints.c.body,
        )
        .order_by(checkpoints.c.number.desc())
        .limit(1)
    )
    found = conn.execute(query).first()
    return CheckpointRow(*found) if found is not None else None


def _param(conn: Connection) -> str:
    return backend_of(conn).param("ref")


def heads(conn: Connection) -> Iterator[tuple[str, int, str]]:
    """(reference, head seq, head hash) of every chain, by reference."""
    sql = "SELECT subject_ref, head_seq, head_hash FROM subjects ORDER BY subject_ref"
    for row in _raw(conn, sql, {}):
        yield row[0], row[1], row[2]


# Event columns in the order ``services/ledger`` reads them.
EVENT_COLUMNS = (
    "subject_ref, seq, event_id, kind, permission_id, state, options, notice_version, locale, "
    "source, channel, occurred_at, expires_at, prev_hash, hash"
)


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
    """Every event by (reference, seq), as driver rows of ``EVENT_COLUMNS``: the whole ledger
    in one pass (datetimes as the driver gives them: text on SQLite)."""
    where = f" WHERE subject_ref = {_param(conn)}" if ref is not None else ""
    sql = f"SELECT {EVENT_COLUMNS} FROM events{where} ORDER BY subject_ref, seq"  # nosec B608
    yield from _raw(conn, sql, {"ref": ref} if ref is not None else {})


def subject_rows(conn: Connection, ref: str | None = None) -> Generator[Any, None, None]:
    """(subject_ref, subject_id, head_seq, head_hash) of every chain (or one), by reference."""
    where = f" WHERE subject_ref = {_param(conn)}" if ref is not None else ""
    sql = f"SELECT subject_ref, subject_id, head_seq, head_hash FROM subjects{where}"  # nosec B608
    yield from _raw(conn, sql + " ORDER BY subject_ref", {"ref": ref} if ref else {})


def projection_rows(conn: Connection, subject_id: str | None = None) -> Generator[Any, None, None]:
    """Every projection row with its chain's reference (None: no live chain has its id), by
    reference then permission: (subject_ref, subject_id, permission_id, state, notice_version,
    expires_at, event_id), datetimes as the driver gives them."""
    where = f" WHERE p.subject_id = {_param(conn)}" if subject_id is not None else ""
    sql = (
        "SELECT s.subject_ref, p.subject_id, p.permission_id, p.state, p.notice_version, "  # nosec B608
        "p.expires_at, p.event_id FROM permission_states p "
        f"LEFT JOIN subjects s ON s.subject_id = p.subject_id{where} "
        "ORDER BY s.subject_ref, p.permission_id"
    )
    yield from _raw(conn, sql, {"ref": subject_id} if subject_id is not None else {})


def subject_of(conn: Connection, ref: str) -> str | None:
    """The subject id still linked to chain ``ref`` (None once erased)."""
    found = conn.execute(select(subjects.c.subject_id).where(subjects.c.subject_ref == ref))
    value = found.scalar()
    return str(value) if value is not None else None
