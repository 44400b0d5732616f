"""The write path of a consent change in as few statements as the database allows.

A change reads what it needs in one statement (``current``: the chain's head, the
jurisdiction, the choices on the permissions it touches) and writes in one more
(``write``): on PostgreSQL a single statement moves the head, appends the events, updates the
projection and writes the outbox rows; on SQLite (no round trips to save: the database is in
the process) one statement per table. Either way it runs in the caller's transaction; on
PostgreSQL a plain change needs none (``Database.write(statements_commit=True)``): its one write
statement is all or nothing, and guarded by the head it read.

The guarantees of every append to a subject's chain:

- optimistic concurrency: the head moves only if it is still where ``current`` found it
  (``UPDATE … WHERE head_seq = expected``); on PostgreSQL everything else in the statement
  reads the updated row, so when the head had moved nothing at all is written, and the caller
  gets ``ConcurrencyConflict`` (a subject seen for the first time is inserted instead: a
  concurrent first write fails on the primary key);
- outbox positions follow each subject's commit order: the outbox rows are produced from the
  updated ``subjects`` row, so a position is taken only once this transaction holds that row's
  lock (``events/outbox.py`` relies on it), and in event order;
- the statements are built once, at import. On PostgreSQL both go straight to the driver
  (``database.driver_rows``: SQLAlchemy's error handling, not its per-statement work); on
  SQLite they are SQLAlchemy Core statements, compiled once per engine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Text,
    and_,
    bindparam,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import sqlite

from consentry.domain import messages
from consentry.domain.errors import ConcurrencyConflict
from consentry.domain.events import GENESIS, Event
from consentry.domain.state import Choice
from consentry.storage import database, keys, pseudonyms
from consentry.storage.rows import (
    CHOICE_COLUMNS,
    EVENT_COLUMNS,
    choice_of,
    choice_of_values,
    choice_row,
    event_row,
)
from consentry.storage.tables import UTCDateTime, events, outbox, permission_states, subjects


@dataclass(frozen=True, slots=True)
class Head:
    """Where a subject's chain ends; ``seq`` 0 means no event yet."""

    seq: int
    hash: str
    exists: bool


@dataclass(frozen=True, slots=True)
class Current:
    """What a change reads before it writes. ``key_scopes``: the scopes of the service key
    asked about (``key_hash``), or None when there is no such key, it is revoked, or none was
    asked about. ``ref``: the chain's reference, resolved by the subject id in the same read
    (a new random one when the id has no live chain: ``pseudonyms``)."""

    head: Head
    jurisdiction: str | None
    choices: dict[str, Choice]
    key_scopes: frozenset[str] | None = None
    ref: str = ""


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


# On PostgreSQL the same read also answers for the writer's service key (``key_hash``; NULL
# matches no key), so checking the credential costs no statement of its own.
# Columns 3 to 10 are the choice's, in ``CHOICE_COLUMNS`` order.
_CHOICE_AT = slice(3, 3 + len(CHOICE_COLUMNS))
CURRENT_POSTGRESQL = f"""
SELECT s.head_seq, s.head_hash, s.jurisdiction,
       {", ".join("p." + name for name in CHOICE_COLUMNS)}, k.scopes, s.subject_ref
FROM (SELECT 1) AS anchor
LEFT JOIN subjects AS s ON s.subject_id = %(sid)s
LEFT JOIN api_keys AS k ON k.key_hash = %(kh)s AND k.revoked_at IS NULL
LEFT JOIN permission_states AS p
    ON p.subject_id = %(sid)s AND p.permission_id = ANY(CAST(%(pids)s AS varchar[]))
"""


def current_params(
    subject_id: str, permission_ids: Sequence[str], key_hash: str | None
) -> dict[str, Any]:
    """The parameters of ``CURRENT_POSTGRESQL``."""
    return {"sid": subject_id, "pids": list(permission_ids), "kh": key_hash}


def current_of(rows: Sequence[Sequence[Any]]) -> Current:
    """``Current`` from the rows of ``CURRENT_POSTGRESQL``."""
    first = rows[0]
    head = Head(first[0], first[1], True) if first[0] is not None else Head(0, GENESIS, False)
    choices = {row[3]: choice_of_values(row[_CHOICE_AT]) for row in rows if row[3] is not None}
    scopes = frozenset(first[-2].split()) if first[-2] is not None else None
    return Current(head, first[2], choices, scopes, first[-1] or pseudonyms.new_ref())


def current(
    conn: Connection,
    subject_id: str,
    permission_ids: Sequence[str],
    key_hash: str | None = None,
) -> Current:
    """The head, the jurisdiction and the choices on ``permission_ids``, in one statement (and
    the scopes of the live service key whose hash is ``key_hash``: in the same statement on
    PostgreSQL, in one more on SQLite)."""
    params = current_params(subject_id, permission_ids, key_hash)
    if conn.dialect.name == "postgresql":
        return current_of(database.driver_rows(conn, CURRENT_POSTGRESQL, params))
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


def outbox_message(subject_id: str, event: Event) -> messages.PermissionChanged:
    """The change message of an event appended by a grant or a withdrawal."""
    return messages.PermissionChanged(
        event_id=event.event_id,
        subject=subject_id,
        subject_ref=event.subject_ref,
        seq=event.seq,
        kind=event.kind.value,
        permission=event.permission_id,
        state=event.state,
        notice_version=event.notice_version,
        source=event.source,
        occurred_at=event.occurred_at.isoformat(),
        expires_at=event.expires_at.isoformat() if event.expires_at else None,
    )


def write(
    conn: Connection,
    subject_id: str,
    expected: Head,
    new: Sequence[Event],
    now: datetime,
    choices: Sequence[Choice] = (),
) -> None:
    """Append ``new`` after ``expected``, project ``choices`` (the plain-text current state the
    events lead to) and write one outbox row per event; ConcurrencyConflict if another writer
    moved the head."""
    if not new:
        return
    if conn.dialect.name == "postgresql":
        sql, params = write_statement(subject_id, expected, new, now, choices)
        require_moved(subject_id, database.driver_rows(conn, sql, params)[0])
    else:
        _write_each(conn, subject_id, expected, new, now, choices)


def conflict(subject_id: str) -> ConcurrencyConflict:
    return ConcurrencyConflict(f"subject {subject_id!r} changed concurrently")


def require_moved(subject_id: str, row: Sequence[Any] | None) -> None:
    """The write statement's one row tells whether it moved the head: if not, nothing was
    written and another writer got there first."""
    if row is None or row[0] != 1:
        raise conflict(subject_id)


# -- PostgreSQL: one statement -------------------------------------------------------------------


# The write, in one statement. Every row it inserts is selected from ``head``, the subjects row
# it moved (or, for a subject's first change, inserted): no row when the head had moved, so
# nothing is written; and the outbox positions (a sequence default) are taken only once this
# transaction holds that row, in event order (``WITH ORDINALITY``). Rows come in as one JSON
# array per table, one parameter each whatever their number. The part after ``head`` is shared
# by the two forms of the statement.
def _recordset_type(name: str, table: Any) -> str:
    """The PostgreSQL type a JSON record's field is read as, for a column of ``table``."""
    kind = table.c[name].type
    if isinstance(kind, UTCDateTime):
        return "timestamptz"
    if isinstance(kind, Integer):
        return "integer"
    return "text" if isinstance(kind, Text) else "varchar"


def _fields(names: Sequence[str], table: Any) -> str:
    return ", ".join(f"{name} {_recordset_type(name, table)}" for name in names)


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
        {_fields(EVENT_COLUMNS, events)}
    )) WITH ORDINALITY AS e({_E}, n)
    ORDER BY e.n
),
projected AS (
    INSERT INTO permission_states (subject_id, {_C})
    SELECT %(sid)s, {_C_FROM}
    FROM head, json_to_recordset(CAST(%(c)s AS json)) AS c(
        {_fields(CHOICE_COLUMNS, permission_states)}
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


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware values")
        return value.isoformat()  # exact to the microsecond, with its offset
    return value


def _json_rows(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(
        [{name: _json_value(value) for name, value in row.items()} for row in rows],
        ensure_ascii=False,
        separators=(",", ":"),
    )


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
        "e": _json_rows([event_row(e) for e in new]),
        "c": _json_rows([choice_row(c) for c in choices]),
        "o": _json_rows(
            [
                {"event_id": e.event_id, "payload": messages.encode(outbox_message(subject_id, e))}
                for e in new
            ]
        ),
    }
    return (_MOVE if expected.exists else _FIRST), params


# -- SQLite (and any other database): one statement per table --------------------------------------

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
_INSERT_OUTBOX = insert(outbox)
_upsert = sqlite.insert(permission_states)
_PROJECT = _upsert.on_conflict_do_update(
    index_elements=[permission_states.c.subject_id, permission_states.c.permission_id],
    set_={name: _upsert.excluded[name] for name in CHOICE_COLUMNS[1:]},
)


def _write_each(
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
