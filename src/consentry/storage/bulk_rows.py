"""The rows a bulk batch writes (``bulk.plan``), shared by both backends' bulk writers
(``bulk_sqlite``, ``bulk_pg``) and the protocol they implement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
class HeadRow:
    seq: int
    hash: str
    erased: bool


@dataclass(slots=True)
class Plan:
    """The rows one batch writes. Times are ``iso_z`` text (UTC, microseconds); each dialect
    writes them in its own form. Channel and expiry are never set by an import.

    - ``events``: event_id, subject_ref, seq, kind, permission_id, state, options (as stored),
      notice_version, locale, source, occurred_at, prev_hash, hash;
    - ``outbox``: event_id, subject_id, payload;
    - ``states_*``: subject_id, permission_id, state, options, notice_version, source,
      updated_at, event_id (``fresh``: subjects new to the ledger; ``merge``: seen before);
    - ``heads_*``: subject_ref, subject_id, head_seq, head_hash.
    """

    events: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[tuple[str, str, str]] = field(default_factory=list)
    states_fresh: list[tuple[Any, ...]] = field(default_factory=list)
    states_merge: list[tuple[Any, ...]] = field(default_factory=list)
    heads_new: list[tuple[str, str, int, str]] = field(default_factory=list)
    heads_moved: list[tuple[str, str, int, str]] = field(default_factory=list)
    keys_new: list[tuple[str, bytes]] = field(default_factory=list)


EVENT_COLUMNS = (
    "event_id, subject_ref, seq, kind, permission_id, state, options, notice_version, "
    "locale, source, channel, occurred_at, expires_at, prev_hash, hash"
)
STATE_COLUMNS = (
    "subject_id, permission_id, state, options, notice_version, source, updated_at, "
    "expires_at, event_id"
)


class BulkWriter(Protocol):
    """A backend's statements for a batch, all on the caller's transaction."""

    def prepare(self, conn: Connection) -> None:
        """Ready a connection that will write many batches."""
        ...

    def lock_heads(self, conn: Connection, refs: Sequence[str]) -> dict[str, HeadRow]:
        """The heads of these chains, locked until the batch commits."""
        ...

    def present(self, conn: Connection, event_ids: Sequence[str]) -> set[str]:
        """Which of these events the ledger already holds."""
        ...

    def held(self, conn: Connection, subject_ids: Sequence[str]) -> dict[tuple[str, str], datetime]:
        """Since when each (subject, permission) choice of these subjects has been held."""
        ...

    def subject_keys(self, conn: Connection, refs: Sequence[str]) -> dict[str, bytes]:
        """The sealing keys of these chains that have one."""
        ...

    def write(self, conn: Connection, rows: Plan, now: datetime) -> None:
        """Write every table's rows of the batch."""
        ...
