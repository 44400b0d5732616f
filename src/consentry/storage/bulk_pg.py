"""PostgreSQL side of ``bulk`` (a ``bulk_rows.BulkWriter``): array lookups for the batch's
reads, ``COPY`` for its rows.

Everything runs on the driver's own connection inside the caller's transaction (as
``postgres.driver_rows`` does), and rows travel as COPY text: one round trip per table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from consentry.storage.bulk_rows import EVENT_COLUMNS, STATE_COLUMNS, HeadRow, Plan


def prepare(conn: Connection) -> None:
    """Nothing to ready on PostgreSQL."""


_NULL = "\\N"
_DIRTY = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

_LOCK_HEADS = """
SELECT subject_ref, head_seq, head_hash, erased_at IS NOT NULL
FROM subjects WHERE subject_ref = ANY(%s::varchar[])
ORDER BY subject_ref
FOR UPDATE
"""
_PRESENT = "SELECT event_id FROM events WHERE event_id = ANY(%s::varchar[])"
_KEYS = "SELECT subject_ref, key FROM subject_keys WHERE subject_ref = ANY(%s::varchar[])"
_MOVE_HEADS = """
UPDATE subjects AS s
SET head_seq = n.seq, head_hash = n.hash, subject_id = n.sid, updated_at = %s
FROM unnest(%s::varchar[], %s::varchar[], %s::integer[], %s::varchar[]) AS n(ref, sid, seq, hash)
WHERE s.subject_ref = n.ref
"""
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS import_states "
    "(LIKE permission_states INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_MERGE = f"""
INSERT INTO permission_states ({STATE_COLUMNS})
SELECT {STATE_COLUMNS} FROM import_states
ON CONFLICT (subject_id, permission_id) DO UPDATE SET
    state = excluded.state, options = excluded.options,
    notice_version = excluded.notice_version, source = excluded.source,
    updated_at = excluded.updated_at, expires_at = excluded.expires_at,
    event_id = excluded.event_id
"""  # nosec B608


def _raw(conn: Connection) -> Any:
    return conn.connection.driver_connection


def _rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with _raw(conn).cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def lock_heads(conn: Connection, refs: Sequence[str]) -> dict[str, HeadRow]:
    return {
        ref: HeadRow(seq, digest, bool(erased))
        for ref, seq, digest, erased in _rows(conn, _LOCK_HEADS, [list(refs)])
    }


def present(conn: Connection, event_ids: Sequence[str]) -> set[str]:
    return {row[0] for row in _rows(conn, _PRESENT, [list(event_ids)])}


def held(conn: Connection, subject_ids: Sequence[str]) -> dict[tuple[str, str], datetime]:
    sql = (
        "SELECT subject_id, permission_id, updated_at FROM permission_states "
        "WHERE subject_id = ANY(%s::varchar[])"
    )
    return {(sid, pid): at for sid, pid, at in _rows(conn, sql, [list(subject_ids)])}


def subject_keys(conn: Connection, refs: Sequence[str]) -> dict[str, bytes]:
    return {ref: bytes(key) for ref, key in _rows(conn, _KEYS, [list(refs)])}


def _esc(value: str | None) -> str:
    return "\\N" if value is None else value.translate(_ESCAPES)


def _copy(conn: Connection, table: str, columns: str, text: str) -> None:
    if not text:
        return
    with _raw(conn).cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
        cp.write(text.encode())


def _plain(rows: Plan) -> bool:
    """Whether no value of the batch needs COPY escaping (the usual case: then the texts are
    built without escaping each value). Values from the file reach the outbox payloads (the
    subject id, the notice version, JSON-escaped), the events (options, locale) and the
    projection (options)."""
    probe = "".join(
        [
            *(p for _, _, p in rows.outbox),
            *(e[6] + (e[8] or "") for e in rows.events),
            *(s[3] for s in rows.states_fresh),
            *(s[3] for s in rows.states_merge),
        ]
    )
    return _DIRTY.search(probe) is None


def events_text(rows: Plan, plain: bool = False) -> str:
    # Ids, references, hashes, kinds, states, permission ids and sources are plain ASCII of
    # their own making or checked; options, notice versions and locales come from the file.
    if plain:
        return "".join(
            [
                f"{e[0]}\t{e[1]}\t{e[2]}\t{e[3]}\t{e[4]}\t{e[5]}\t{e[6]}\t{e[7]}\t"
                f"{_NULL if e[8] is None else e[8]}\t{e[9]}\t\\N\t{e[10]}\t\\N\t{e[11]}\t{e[12]}\n"
                for e in rows.events
            ]
        )
    return "".join(
        [
            f"{e[0]}\t{e[1]}\t{e[2]}\t{e[3]}\t{e[4]}\t{e[5]}\t{_esc(e[6])}\t{_esc(e[7])}\t"
            f"{_esc(e[8])}\t{e[9]}\t\\N\t{e[10]}\t\\N\t{e[11]}\t{e[12]}\n"
            for e in rows.events
        ]
    )


def outbox_text(rows: Plan, stamp: str, plain: bool = False) -> str:
    if plain:
        return "".join([f"{e}\t{s}\t{p}\t{stamp}\n" for e, s, p in rows.outbox])
    return "".join([f"{e}\t{_esc(s)}\t{_esc(p)}\t{stamp}\n" for e, s, p in rows.outbox])


def _states_text(states: Sequence[tuple[Any, ...]], plain: bool = False) -> str:
    if plain:
        return "".join(
            [
                f"{s[0]}\t{s[1]}\t{s[2]}\t{s[3]}\t{s[4]}\t{s[5]}\t{s[6]}\t\\N\t{s[7]}\n"
                for s in states
            ]
        )
    return "".join(
        [
            f"{_esc(s[0])}\t{s[1]}\t{s[2]}\t{_esc(s[3])}\t{_esc(s[4])}\t{s[5]}\t{s[6]}\t"
            f"\\N\t{s[7]}\n"
            for s in states
        ]
    )


def write(conn: Connection, rows: Plan, now: datetime) -> None:
    stamp = now.isoformat()
    if rows.keys_new:
        keys = "".join(f"{ref}\t\\\\x{key.hex()}\t{stamp}\n" for ref, key in rows.keys_new)
        _copy(conn, "subject_keys", "subject_ref, key, created_at", keys)
    if rows.heads_new:
        heads = "".join(
            f"{ref}\t{_esc(sid)}\t{seq}\t{digest}\t{stamp}\t{stamp}\n"
            for ref, sid, seq, digest in rows.heads_new
        )
        _copy(
            conn,
            "subjects",
            "subject_ref, subject_id, head_seq, head_hash, created_at, updated_at",
            heads,
        )
    if rows.heads_moved:
        moved = rows.heads_moved
        _rows(
            conn,
            _MOVE_HEADS,
            [
                now,
                [m[0] for m in moved],
                [m[1] for m in moved],
                [m[2] for m in moved],
                [m[3] for m in moved],
            ],
        )
    plain = _plain(rows)
    _copy(conn, "events", EVENT_COLUMNS, events_text(rows, plain))
    _copy(
        conn, "outbox", "event_id, subject_id, payload, created_at", outbox_text(rows, stamp, plain)
    )
    _copy(conn, "permission_states", STATE_COLUMNS, _states_text(rows.states_fresh, plain))
    if rows.states_merge:
        _rows(conn, _STAGE, [])
        _copy(conn, "import_states", STATE_COLUMNS, _states_text(rows.states_merge, plain))
        _rows(conn, _MERGE, [])
