"""PostgreSQL: the backend for any number of processes (``backend.Backend``).

The write path of a change in two statements (``changes`` states its guarantees): one read
(``CURRENT``: the head, the jurisdiction, the choices it touches and the writer's service
key) and one write (``write_statement``): a single statement moves the head, appends the
events, updates the projection and writes the outbox rows; every row it inserts is selected
from ``head``, the subjects row it moved, so when the head had moved nothing at all is written.
Both statements go straight to the driver (``driver_rows``: SQLAlchemy's error handling, not
its per-statement work). Plain changes go through the group commit instead
(``change_batches``), whose batch statements are in ``postgres_batch``: the same guarantees
for many subjects in one statement.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    Engine,
    String,
    any_,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.exc import DBAPIError, DisconnectionError

from consentry.domain import messages
from consentry.domain.events import GENESIS, Event
from consentry.domain.state import Choice
from consentry.storage import bulk_pg, outbox, pseudonyms
from consentry.storage import postgres_batch as batch
from consentry.storage.bulk_rows import BulkWriter
from consentry.storage.changes import (
    Ask,
    Current,
    Head,
    SubjectWrite,
    outbox_message,
    require_moved,
)
from consentry.storage.keys import KeyRecord
from consentry.storage.outbox import OutboxMessage
from consentry.storage.postgres_batch import json_rows, recordset_fields
from consentry.storage.rows import (
    CHOICE_COLUMNS,
    EVENT_COLUMNS,
    choice_of_values,
    choice_row,
    event_row,
)
from consentry.storage.tables import events, permission_states
from consentry.storage.tables import outbox as outbox_table

# Connections kept open per process. The API answers from a thread pool (40 threads), so under
# load up to that many requests want a connection at once: a connection opened beyond the kept
# ones is closed again when returned, and opening one costs PostgreSQL a new backend process
# (measured: one new connection per six writes with 10 kept and 64 requests in flight).
POOL_SIZE = 20
POOL_OVERFLOW = 10
PING_AFTER = 1.0


def driver_rows(conn: Connection, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run one statement (in the driver's ``%(name)s`` style) on the driver's own connection,
    inside ``conn``'s transaction, and return its rows as tuples. For the hot write path: it
    skips SQLAlchemy's per-statement work (about 50 µs of CPU each here), but not its error
    handling: driver errors come out as SQLAlchemy's (``IntegrityError``, ``OperationalError``
    …), and a lost connection is invalidated, with the rest of the pool, as SQLAlchemy does."""
    raw: Any = conn.connection.driver_connection
    dialect = conn.dialect
    error: Any = dialect.loaded_dbapi.Error
    try:
        with raw.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    except error as exc:
        gone = bool(dialect.is_disconnect(exc, raw, None))
        if gone:
            conn.invalidate(exc)
            conn.engine.dispose(close=False)  # every other pooled connection went with it
        raise DBAPIError.instance(
            sql, dict(params), exc, error, connection_invalidated=gone, dialect=dialect
        ) from exc


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection at checkout when it sat unused for ``PING_AFTER`` seconds
    (``pool_pre_ping`` checks every checkout: a round trip on every transaction). One that
    fails is replaced before the caller gets it, so after a database restart idle connections
    never reach a request; a connection that dies while in steady use fails its statement,
    which invalidates the whole pool (SQLAlchemy), and the request answers 503."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("connection failed its check") from exc
        if not alive:
            raise DisconnectionError("connection failed its check")


# -- a change: the read ------------------------------------------------------------------------

# On PostgreSQL the same read also answers for the writer's service key (``key_hash``; NULL
# matches no key), so checking the credential costs no statement of its own.
# Columns 3 to 10 are the choice's, in ``CHOICE_COLUMNS`` order.
_CHOICE_AT = slice(3, 3 + len(CHOICE_COLUMNS))
CURRENT = f"""
SELECT s.head_seq, s.head_hash, s.jurisdiction,
       {", ".join("p." + name for name in CHOICE_COLUMNS)}, k.scopes, s.subject_ref
FROM (SELECT 1) AS anchor
LEFT JOIN subjects AS s ON s.subject_id = %(sid)s
LEFT JOIN api_keys AS k ON k.key_hash = %(kh)s AND k.revoked_at IS NULL
LEFT JOIN permission_states AS p
    ON p.subject_id = %(sid)s AND p.permission_id = ANY(CAST(%(pids)s AS varchar[]))
"""  # nosec B608 - column lists from the table definitions, every value bound


def current_params(
    subject_id: str, permission_ids: Sequence[str], key_hash: str | None
) -> dict[str, Any]:
    """The parameters of ``CURRENT``."""
    return {"sid": subject_id, "pids": list(permission_ids), "kh": key_hash}


def current_of(rows: Sequence[Sequence[Any]]) -> Current:
    """``Current`` from the rows of ``CURRENT``."""
    first = rows[0]
    head = Head(first[0], first[1], True) if first[0] is not None else Head(0, GENESIS, False)
    choices = {row[3]: choice_of_values(row[_CHOICE_AT]) for row in rows if row[3] is not None}
    scopes = frozenset(first[-2].split()) if first[-2] is not None else None
    return Current(head, first[2], choices, scopes, first[-1] or pseudonyms.new_ref())


# -- a change: the write, in one statement ----------------------------------------------------


_E = ", ".join(EVENT_COLUMNS)
_E_FROM = ", ".join("e." + name for name in EVENT_COLUMNS)
_C = ", ".join(CHOICE_COLUMNS)
_C_FROM = ", ".join("c." + name for name in CHOICE_COLUMNS)
_C_SET = ", ".join(f"{name} = excluded.{name}" for name in CHOICE_COLUMNS[1:])
_PG_WRITES = f"""
appended AS (
    INSERT INTO events ({_E})
    SELECT {_E_FROM}
    FROM head, ROWS FROM (json_to_recordset(CAST(%(e)s AS json)) AS (
        {recordset_fields(EVENT_COLUMNS, events)}
    )) WITH ORDINALITY AS e({_E}, n)
    ORDER BY e.n
),
projected AS (
    INSERT INTO permission_states (subject_id, {_C})
    SELECT %(sid)s, {_C_FROM}
    FROM head, json_to_recordset(CAST(%(c)s AS json)) AS c(
        {recordset_fields(CHOICE_COLUMNS, permission_states)}
    )
    ON CONFLICT (subject_id, permission_id) DO UPDATE SET {_C_SET}
),
"""  # nosec B608 - column lists from the table definitions, every value bound
_PG_ANNOUNCE = """
announced AS (
    INSERT INTO outbox (event_id, subject_id, payload, created_at)
    SELECT o.event_id, %(sid)s, o.payload, %(now)s
    FROM head, ROWS FROM (json_to_recordset(CAST(%(o)s AS json)) AS (
        event_id varchar, payload text
    )) WITH ORDINALITY AS o(event_id, payload, n)
    ORDER BY o.n
)
SELECT count(*) FROM head
"""
_PG_MOVE_HEAD = """
WITH head AS (
    UPDATE subjects
    SET head_seq = %(seq)s, head_hash = %(hash)s, updated_at = %(now)s, subject_id = %(sid)s
    WHERE subject_ref = %(ref)s AND head_seq = %(expected)s
    RETURNING subject_ref
),
"""
_PG_FIRST_HEAD = """
WITH head AS (
    INSERT INTO subjects (subject_ref, subject_id, jurisdiction, head_seq, head_hash,
                          created_at, updated_at)
    VALUES (%(ref)s, %(sid)s, NULL, %(seq)s, %(hash)s, %(now)s, %(now)s)
    RETURNING subject_ref
),
"""
_MOVE = _PG_MOVE_HEAD + _PG_WRITES + _PG_ANNOUNCE
_FIRST = _PG_FIRST_HEAD + _PG_WRITES + _PG_ANNOUNCE


def _in_utc(moment: datetime) -> datetime:
    """As ``UTCDateTime`` writes it: refuse a naive datetime, send it in UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the database; use UTC-aware values")
    return moment.astimezone(UTC)


def write_statement(
    subject_id: str,
    expected: Head,
    new: Sequence[Event],
    now: datetime,
    choices: Sequence[Choice],
) -> tuple[str, dict[str, Any]]:
    """The PostgreSQL write statement and its parameters; it returns one row, whose one value
    is 1 when the head moved (0: ConcurrencyConflict)."""
    last = new[-1]
    params: dict[str, Any] = {
        "ref": last.subject_ref,
        "sid": subject_id,
        "seq": last.seq,
        "hash": last.hash,
        "now": _in_utc(now),
        "expected": expected.seq,
        "e": json_rows([event_row(e) for e in new]),
        "c": json_rows([choice_row(c) for c in choices]),
        "o": json_rows(
            [
                {"event_id": e.event_id, "payload": messages.encode(outbox_message(subject_id, e))}
                for e in new
            ]
        ),
    }
    return (_MOVE if expected.exists else _FIRST), params


# -- the service key of a request ----------------------------------------------------------------

_KEY_BY_HASH = (
    "SELECT key_id, name, scopes, created_at, revoked_at FROM api_keys WHERE key_hash = %(h)s"
)


# -- the outbox: lists as one array parameter, so that the statement's text is the same whatever
# the batch (the driver prepares it, the server plans it once) ------------------------------------

_POSITIONS = outbox_table.c.position == any_(bindparam("positions", type_=ARRAY(BigInteger)))
_SUBJECTS = outbox_table.c.subject_id == any_(bindparam("subjects", type_=ARRAY(String)))
_ELSEWHERE = outbox.elsewhere(_POSITIONS, _SUBJECTS)
_MARK = outbox.mark(_POSITIONS)


class PostgresBackend:
    name = "postgresql"
    in_process = False
    locks_rows = True
    statements_commit = True
    bulk: BulkWriter = bulk_pg  # the statements of a bulk import

    def engines(self, url: str) -> tuple[Engine, Engine]:
        engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
        _ping_when_idle(engine)
        return engine, engine

    def writer_engine(self, url: str, name: str) -> Engine:
        engine = create_engine(url, pool_size=1, max_overflow=1)
        _ping_when_idle(engine)

        @event.listens_for(engine, "do_connect")
        def _named(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
            params.setdefault("application_name", name)
            # The batch's two statements, whose custom plans the server would otherwise redo
            # on every call (they always look cheaper): the generic plan is the same lookups
            # by unique indexes.
            params["options"] = f"{params.get('options', '')} -c plan_cache_mode=force_generic_plan"

        return engine

    def flush_log(self, engine: Engine) -> None:
        return None

    def relay_lock(self, url: str) -> IO[bytes] | None:
        return None  # relays share the outbox by row locks

    def current(
        self,
        conn: Connection,
        subject_id: str,
        permission_ids: Sequence[str],
        key_hash: str | None = None,
    ) -> Current:
        params = current_params(subject_id, permission_ids, key_hash)
        return current_of(driver_rows(conn, CURRENT, params))

    def write(
        self,
        conn: Connection,
        subject_id: str,
        expected: Head,
        new: Sequence[Event],
        now: datetime,
        choices: Sequence[Choice] = (),
    ) -> None:
        if not new:
            return
        sql, params = write_statement(subject_id, expected, new, now, choices)
        require_moved(subject_id, driver_rows(conn, sql, params)[0])

    def current_many(self, conn: Connection, asks: Sequence[Ask]) -> list[Current]:
        rows = driver_rows(conn, batch.CURRENT_MANY, batch.current_many_params(asks))
        return [current_of(found) for found in batch.by_change(rows, len(asks))]

    def write_many(self, conn: Connection, writes: Sequence[SubjectWrite]) -> set[str]:
        if not writes:
            return set()
        written = driver_rows(conn, batch.WRITE_MANY, batch.write_many_params(writes))
        return batch.lost(writes, written)

    def find_key(self, conn: Connection, key_hash: str) -> KeyRecord | None:
        found = driver_rows(conn, _KEY_BY_HASH, {"h": key_hash})
        if not found:
            return None
        key_id, name, scopes, created_at, revoked_at = found[0]
        return KeyRecord(
            key_id,
            name,
            frozenset(scopes.split()),
            created_at.astimezone(UTC),
            revoked_at.astimezone(UTC) if revoked_at is not None else None,
        )

    def outbox_in_order(
        self, conn: Connection, batch: Sequence[OutboxMessage]
    ) -> list[OutboxMessage]:
        return outbox.in_order(conn, batch, _ELSEWHERE)

    def mark_published(self, conn: Connection, positions: Sequence[int], now: datetime) -> int:
        return outbox.mark_published(conn, positions, now, _MARK)

    def pass_cursor(self, driver: Any, name: str) -> Any:
        return driver.cursor(name=name)  # server-side: rows come in as they are read

    def param(self, name: str) -> str:
        return f"%({name})s"


BACKEND = PostgresBackend()
