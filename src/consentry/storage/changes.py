"""A change to a subject's chain: what it reads (``Current``) and the guarantees of its write.

A change reads what it needs in one statement (``Backend.current``: the chain's head, the
jurisdiction, the choices on the permissions it touches) and writes in one more
(``Backend.write``): on PostgreSQL a single statement moves the head, appends the events,
updates the projection and writes the outbox rows (``postgres.py``); on SQLite (no round trips
to save: the database is in the process) one statement per table (``sqlite.py``). Either way
it runs in the caller's transaction; on PostgreSQL a plain change needs none
(``Database.write(statements_commit=True)``): its one write statement is all or nothing, and
guarded by the head it read.

The guarantees of every append to a subject's chain:

- optimistic concurrency: the head moves only if it is still where ``current`` found it
  (``UPDATE … WHERE head_seq = expected``); on PostgreSQL everything else in the statement
  reads the updated row, so when the head had moved nothing at all is written, and the caller
  gets ``ConcurrencyConflict`` (a subject seen for the first time is inserted instead: a
  concurrent first write fails on the primary key);
- outbox positions follow each subject's commit order: the outbox rows are produced from the
  updated ``subjects`` row, so a position is taken only once this transaction holds that row's
  lock (``storage/outbox.py`` relies on it), and in event order;
- the statements are built once, at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.domain import messages
from consentry.domain.errors import ConcurrencyConflict
from consentry.domain.events import Event
from consentry.domain.state import Choice


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


@dataclass(frozen=True, slots=True)
class Ask:
    """What one change of a batch reads (``Backend.current_many``): as ``Backend.current``."""

    subject_id: str
    permission_ids: Sequence[str]
    key_hash: str | None = None


@dataclass(slots=True)
class SubjectWrite:
    """What a batch appends to one subject's chain (``Backend.write_many``): ``new`` after
    ``expected``, the choices they leave (each permission once), at ``now``."""

    subject_id: str
    ref: str
    expected: Head
    new: list[Event]
    choices: list[Choice]
    now: datetime


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


def conflict(subject_id: str) -> ConcurrencyConflict:
    return ConcurrencyConflict(f"subject {subject_id!r} changed concurrently")


def require_moved(subject_id: str, row: Sequence[Any] | None) -> None:
    """The write statement's one row tells whether it moved the head: if not, nothing was
    written and another writer got there first."""
    if row is None or row[0] != 1:
        raise conflict(subject_id)
