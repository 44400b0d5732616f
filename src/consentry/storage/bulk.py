"""Bulk writes of imported consent records: events, chains, projection and outbox per batch.

One batch is one transaction, on the caller's connection (``Database.write``). It reads what it
needs for the whole batch at once (each subject's head, which of the batch's events the ledger
already holds, the sealing keys of subjects whose records carry options), appends each
subject's records to its chain in time order, and writes every table in one go: ``COPY`` on
PostgreSQL, ``executemany`` on SQLite.

The guarantees of a live change hold:

- a subject's head moves only under its row lock (``FOR UPDATE`` on PostgreSQL; SQLite's
  writer lock), so a live change to the same subject either commits before (the batch then
  reads its head) or after (its optimistic check sees the head moved, and it retries); a
  subject created by a live change while the batch runs fails the batch on the primary key,
  and the caller runs it again;
- outbox rows are written after the heads, in chain order, so positions follow commit order;
- an event id already in the ledger is not written again: ids are derived from the record
  (``domain.imports.event_id_of``), so a re-run or a resumed import writes nothing twice (the
  ids of subjects new to the ledger are not looked up: should one be there, its unique key
  fails the batch, which runs again looking up every id);
- a subject's current choice stays its newest: within a batch a subject's records are appended
  in time order, and a record older than the choice the subject already holds on that
  permission is refused (appended, it would be the chain's last word on it, for the projection
  and for every follower of the outbox); sort a file by time to keep every record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from consentry import crypto
from consentry.domain.events import GENESIS
from consentry.domain.imports import (
    ImportRecord,
    Parts,
    hash_of,
    iso_of_z,
    parts_of,
    payload_of,
    subject_json,
)
from consentry.domain.messages import dumps
from consentry.storage import pseudonyms
from consentry.storage.bulk_rows import HeadRow, Plan
from consentry.storage.database import backend_of


def _refs_for(conn: Connection, subject_ids: Iterable[str]) -> dict[str, str]:
    """The ledger reference of each subject of a batch, all at once: the live chain's, or a
    fresh random one for a subject new to the ledger (its row is written with the batch)."""
    ids = set(subject_ids)
    refs = pseudonyms.resolve_many(conn, ids)
    return {sid: refs.get(sid) or pseudonyms.new_ref() for sid in ids}


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    imported: int  # events written
    present: int  # records whose event the ledger already held (or repeated in the batch)
    refused: list[tuple[ImportRecord, str]]  # not written, and why (see ``split``)
    subjects: int  # subjects whose chain grew


def plan(
    records: Sequence[ImportRecord],
    refs: dict[str, str],
    heads: dict[str, HeadRow],
    keys: dict[str, bytes],
) -> Plan:
    """The rows that append ``records`` (each absent from the ledger, one per event id) to
    their subjects' chains. ``keys``: the sealing keys of the subjects with options that have
    one; a missing key is made here (and written by ``keys_new``)."""
    out = Plan()
    by_subject: dict[str, list[ImportRecord]] = {}
    for record in records:
        mine = by_subject.get(record.subject)
        if mine is None:
            by_subject[record.subject] = [record]
        else:
            mine.append(record)
    events, outbox = out.events.append, out.outbox.append
    parts: dict[tuple[str, str, str, str | None, str], Parts] = {}
    for sid, mine in by_subject.items():
        ref = refs[sid]
        head = heads.get(ref)
        seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS)
        if len(mine) > 1:
            mine.sort(key=_by_time)
        named = subject_json(sid)
        latest: dict[str, tuple[Any, ...]] = {}
        for r in mine:
            seq += 1
            shape = (r.permission, r.state, r.notice_version, r.locale, r.source)
            p = parts.get(shape)
            if p is None:
                p = parts[shape] = parts_of(*shape)
            plain = stored = "{}"
            if r.options:
                key = keys.get(ref)
                if key is None:
                    key = keys[ref] = crypto.new_key()
                    out.keys_new.append((ref, key))
                plain = dumps(r.options)
                stored = dumps(crypto.seal_options(key, r.options, r.event_id.encode()))
            eid, z = r.event_id, r.z
            digest = hash_of(p, eid, z, stored, prev, seq, ref)
            events(
                (
                    eid,
                    ref,
                    seq,
                    p.kind,
                    r.permission,
                    r.state,
                    stored,
                    r.notice_version,
                    r.locale,
                    p.source,
                    z,
                    prev,
                    digest,
                )
            )
            outbox((eid, sid, payload_of(p, eid, iso_of_z(z), seq, named, ref)))
            latest[r.permission] = (
                sid,
                r.permission,
                r.state,
                plain,
                r.notice_version,
                p.source,
                z,
                eid,
            )
            prev = digest
        (out.states_merge if head is not None else out.states_fresh).extend(latest.values())
        (out.heads_moved if head is not None else out.heads_new).append((ref, sid, seq, prev))
    return out


def _by_time(record: ImportRecord) -> datetime:
    return record.time


def split(
    records: Sequence[ImportRecord],
    present: set[str],
    heads: dict[str, HeadRow],
    refs: dict[str, str],
    held: dict[tuple[str, str], datetime],
) -> tuple[list[ImportRecord], int, list[tuple[ImportRecord, str]]]:
    """The records still to write (first of each event id, not yet in the ledger), how many
    were already there, and the ones refused with why: a subject erased from the ledger, or
    a record older than the choice the subject holds on that permission (``held``: its time),
    which, appended, would become the current choice again."""
    todo: list[ImportRecord] = []
    refused: list[tuple[ImportRecord, str]] = []
    seen: set[str] = set()
    repeated = 0
    for r in records:
        if r.event_id in present or r.event_id in seen:
            repeated += 1
            continue
        seen.add(r.event_id)
        head = heads.get(refs[r.subject])
        if head is not None and head.erased:
            refused.append((r, f"subject {r.subject!r} was erased: its records are not imported"))
            continue
        since = held.get((r.subject, r.permission))
        if since is not None and r.time < since:
            refused.append(
                (r, f"older than the choice on {r.permission!r} held since {since.isoformat()}")
            )
            continue
        todo.append(r)
    return todo, repeated, refused


def prepare(conn: Connection) -> None:
    """Ready a connection that will write many batches (on SQLite: a larger page cache)."""
    backend_of(conn).bulk.prepare(conn)


class AlreadyWritten(Exception):
    """An event id of a subject new to the ledger was in it already (imported before under
    another subject id, or a subject since erased), or another writer created one of the
    batch's subjects meanwhile: run the batch again with ``look_up_all``."""


# What a driver raises for a unique key that is taken (SQLAlchemy's when it ran the statement),
# or when two writers of one import wait on each other's taken ids (PostgreSQL ends one).
_TAKEN = (
    sqlite3.IntegrityError,
    psycopg.IntegrityError,
    psycopg.errors.DeadlockDetected,
    IntegrityError,
)


def write_batch(
    conn: Connection,
    records: Sequence[ImportRecord],
    now: datetime,
    *,
    look_up_all: bool = False,
) -> BatchOutcome:
    """Write one batch in the caller's transaction (see the module's guarantees).

    Which event ids the ledger holds already is looked up for the records of subjects it
    knows; a subject new to the ledger has none (its chain begins here). When one does after
    all (``AlreadyWritten``: the transaction is then to be rolled back), the caller runs the
    batch again with ``look_up_all``, looking up every id."""
    side = backend_of(conn).bulk  # each database's statements
    refs = _refs_for(conn, {r.subject for r in records})
    heads = side.lock_heads(conn, sorted(set(refs.values())))
    ids = [r.event_id for r in records if look_up_all or refs[r.subject] in heads]
    present = side.present(conn, ids) if ids else set()
    known = sorted({r.subject for r in records if refs[r.subject] in heads})
    held = side.held(conn, known) if known else {}
    todo, repeated, refused = split(records, present, heads, refs, held)
    if not todo:
        return BatchOutcome(0, repeated, refused, 0)
    sealed = sorted({refs[r.subject] for r in todo if r.options})
    keys = side.subject_keys(conn, sealed) if sealed else {}
    rows = plan(todo, refs, heads, keys)
    try:
        side.write(conn, rows, now.astimezone(UTC))
    except _TAKEN as exc:
        if look_up_all:
            raise
        raise AlreadyWritten from exc
    return BatchOutcome(
        len(rows.events), repeated, refused, len(rows.heads_new) + len(rows.heads_moved)
    )
