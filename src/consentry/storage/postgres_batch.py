"""PostgreSQL: a batch of changes in two statements, whatever its size.

``CURRENT_MANY`` reads what every change of the batch reads (``postgres.CURRENT`` once per
change, as one statement); ``WRITE_MANY`` writes the whole batch: it moves each subject's head
where it still is where the batch read it (``UPDATE … WHERE head_seq = expected``), inserts the
subjects seen for the first time (``ON CONFLICT DO NOTHING``: one inserted meanwhile by another
writer is a lost race, not an error), and appends the events, projection and outbox rows of
exactly the subjects it moved or inserted (selected from ``head``), so a subject that lost a
race has nothing written and the others are unaffected. It returns the references it moved:
every other subject of the batch lost its race (``changes.ConcurrencyConflict``).

The guarantees of ``changes`` hold per subject: an outbox position is drawn only for a row
selected from ``head``, that is once this transaction holds the subject's row lock, and rows
are inserted in the batch's order (``WITH ORDINALITY`` … ``ORDER BY``). Each statement
commits on its own; the write is all or nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Text

from consentry.domain import messages
from consentry.storage.changes import Ask, SubjectWrite, outbox_message
from consentry.storage.rows import CHOICE_COLUMNS, EVENT_COLUMNS, choice_row, event_row
from consentry.storage.tables import UTCDateTime, events, permission_states

# -- values as JSON records (one parameter per table, whatever the number of rows) ---------------


def _recordset_type(name: str, table: Any) -> str:
    """The PostgreSQL type a JSON record's field is read as, for a column of ``table``."""
    kind = table.c[name].type
    if isinstance(kind, UTCDateTime):
        return "timestamptz"
    if isinstance(kind, Integer):
        return "integer"
    return "text" if isinstance(kind, Text) else "varchar"


def recordset_fields(names: Sequence[str], table: Any) -> str:
    return ", ".join(f"{name} {_recordset_type(name, table)}" for name in names)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware values")
        return value.isoformat()  # exact to the microsecond, with its offset
    return value


def json_rows(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(
        [{name: _json_value(value) for name, value in row.items()} for row in rows],
        ensure_ascii=False,
        separators=(",", ":"),
    )


# -- the batch's statements -----------------------------------------------------------------------

CURRENT_MANY = f"""
SELECT s.head_seq, s.head_hash, s.jurisdiction,
       {", ".join("p." + name for name in CHOICE_COLUMNS)}, k.scopes, s.subject_ref, q.n
FROM unnest(CAST(%(sids)s AS varchar[]), CAST(%(khs)s AS varchar[])) WITH ORDINALITY
    AS q(sid, kh, n)
LEFT JOIN subjects AS s ON s.subject_id = q.sid
LEFT JOIN api_keys AS k ON k.key_hash = q.kh AND k.revoked_at IS NULL
LEFT JOIN permission_states AS p
    ON p.subject_id = q.sid AND p.permission_id = ANY(CAST(%(pids)s AS varchar[]))
ORDER BY q.n
"""  # nosec B608 - column lists from the table definitions, every value bound

_E = ", ".join(EVENT_COLUMNS)
_E_FROM = ", ".join("e." + name for name in EVENT_COLUMNS)
_C = ", ".join(CHOICE_COLUMNS)
_C_FROM = ", ".join("c." + name for name in CHOICE_COLUMNS)
_C_SET = ", ".join(f"{name} = excluded.{name}" for name in CHOICE_COLUMNS[1:])
_fields = recordset_fields
WRITE_MANY = f"""
WITH moved AS (
    UPDATE subjects AS s
    SET head_seq = h.seq, head_hash = h.hash, updated_at = h.now, subject_id = h.sid
    FROM json_to_recordset(CAST(%(h)s AS json)) AS h(
        ref varchar, sid varchar, seq integer, hash varchar, expected integer, now timestamptz
    )
    -- the batch's subjects by their primary key, whatever the planner guesses of h's rows
    WHERE s.subject_ref = ANY(CAST(%(refs)s AS varchar[]))
        AND s.subject_ref = h.ref AND s.head_seq = h.expected
    RETURNING s.subject_ref
),
born AS (
    INSERT INTO subjects (subject_ref, subject_id, jurisdiction, head_seq, head_hash,
                          created_at, updated_at)
    SELECT f.ref, f.sid, NULL, f.seq, f.hash, f.now, f.now
    FROM json_to_recordset(CAST(%(f)s AS json)) AS f(
        ref varchar, sid varchar, seq integer, hash varchar, now timestamptz
    )
    ON CONFLICT DO NOTHING
    RETURNING subject_ref
),
head AS (SELECT subject_ref FROM moved UNION ALL SELECT subject_ref FROM born),
appended AS (
    INSERT INTO events ({_E})
    SELECT {_E_FROM}
    FROM ROWS FROM (json_to_recordset(CAST(%(e)s AS json)) AS (
        {_fields(EVENT_COLUMNS, events)}
    )) WITH ORDINALITY AS e({_E}, n)
    WHERE e.subject_ref IN (SELECT subject_ref FROM head)
    ORDER BY e.n
),
projected AS (
    INSERT INTO permission_states (subject_id, {_C})
    SELECT c.sid, {_C_FROM}
    FROM json_to_recordset(CAST(%(c)s AS json)) AS c(
        ref varchar, sid varchar, {_fields(CHOICE_COLUMNS, permission_states)}
    )
    WHERE c.ref IN (SELECT subject_ref FROM head)
    ON CONFLICT (subject_id, permission_id) DO UPDATE SET {_C_SET}
),
announced AS (
    INSERT INTO outbox (event_id, subject_id, payload, created_at)
    SELECT o.event_id, o.sid, o.payload, o.now
    FROM ROWS FROM (json_to_recordset(CAST(%(o)s AS json)) AS (
        ref varchar, sid varchar, event_id varchar, payload text, now timestamptz
    )) WITH ORDINALITY AS o(ref, sid, event_id, payload, now, n)
    WHERE o.ref IN (SELECT subject_ref FROM head)
    ORDER BY o.n
)
SELECT subject_ref FROM head
"""  # nosec B608 - column lists from the table definitions, every value bound


def current_many_params(asks: Sequence[Ask]) -> dict[str, Any]:
    """The parameters of ``CURRENT_MANY``. Each change also gets the choices of the other
    permissions the batch asks about on its subject (all current)."""
    return {
        "sids": [ask.subject_id for ask in asks],
        "khs": [ask.key_hash for ask in asks],
        "pids": sorted({pid for ask in asks for pid in ask.permission_ids}),
    }


def by_change(rows: Sequence[Sequence[Any]], count: int) -> list[list[Sequence[Any]]]:
    """The rows of ``CURRENT_MANY`` per change, each as ``postgres.CURRENT`` gives them."""
    grouped: list[list[Sequence[Any]]] = [[] for _ in range(count)]
    for row in rows:
        grouped[row[-1] - 1].append(row[:-1])
    return grouped


def write_many_params(writes: Sequence[SubjectWrite]) -> dict[str, Any]:
    """The parameters of ``WRITE_MANY``."""
    heads = [
        {
            "ref": w.ref,
            "sid": w.subject_id,
            "seq": w.new[-1].seq,
            "hash": w.new[-1].hash,
            "expected": w.expected.seq,
            "now": w.now,
        }
        for w in writes
    ]
    return {
        "refs": [w.ref for w in writes if w.expected.exists],
        "h": json_rows([h for h, w in zip(heads, writes, strict=True) if w.expected.exists]),
        "f": json_rows([h for h, w in zip(heads, writes, strict=True) if not w.expected.exists]),
        "e": json_rows([event_row(e) for w in writes for e in w.new]),
        "c": json_rows(
            [
                {"ref": w.ref, "sid": w.subject_id, **choice_row(c)}
                for w in writes
                for c in w.choices
            ]
        ),
        "o": json_rows(
            [
                {
                    "ref": w.ref,
                    "sid": w.subject_id,
                    "event_id": e.event_id,
                    "payload": messages.encode(outbox_message(w.subject_id, e)),
                    "now": w.now,
                }
                for w in writes
                for e in w.new
            ]
        ),
    }


def lost(writes: Sequence[SubjectWrite], written: Sequence[Sequence[Any]]) -> set[str]:
    """The subjects of ``writes`` whose head ``WRITE_MANY`` did not move (its rows: the
    references it moved)."""
    moved = {row[0] for row in written}
    return {w.subject_id for w in writes if w.ref not in moved}
