"""The storage seam: what differs between the databases consentry runs on, behind one protocol.

Two implementations: ``sqlite.py`` (the embedded default: the database is a file in this
process) and ``postgres.py`` (any number of processes). ``Database`` picks one by its URL
(``Database.backend``), and ``database.backend_of`` finds a connection's. Everything else in
storage is written once, in SQLAlchemy Core, for both; a statement lives in a backend only when
the two databases need different text (or the backend runs it past SQLAlchemy, for speed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from consentry.domain.events import Event
    from consentry.domain.state import Choice
    from consentry.storage.bulk_rows import BulkWriter
    from consentry.storage.changes import Ask, Current, Head, SubjectWrite
    from consentry.storage.keys import KeyRecord
    from consentry.storage.outbox import OutboxMessage


class RelayBusy(RuntimeError):
    """Another relay already runs on this database (a SQLite file has one)."""


class Backend(Protocol):
    name: str  # SQLAlchemy's name of the database: "sqlite" | "postgresql"
    # The database lives in this process: one writer at a time (writes are grouped into one
    # commit), and the relay runs embedded by default, one per database file.
    in_process: bool
    # Rows can be claimed FOR UPDATE SKIP LOCKED: any number of relays share the outbox, each
    # publishing inside the transaction that claimed its rows.
    locks_rows: bool
    # Statements can commit on their own (autocommit), sparing BEGIN and COMMIT.
    statements_commit: bool
    bulk: BulkWriter  # the statements of a bulk import (``bulk.py``)

    def engines(self, url: str) -> tuple[Engine, Engine]:
        """The (write, read) engines for ``url`` (possibly one engine twice)."""
        ...

    def writer_engine(self, url: str, name: str) -> Engine:
        """The engine of the group commit's one writer (``change_batches``): one connection
        kept open, named ``name`` where the database shows names."""
        ...

    def flush_log(self, engine: Engine) -> None:
        """Move what a write-ahead log holds into the database file, where the database keeps
        one of its own (page images of erased rows leave the disk); else nothing."""
        ...

    def relay_lock(self, url: str) -> IO[bytes] | None:
        """Hold what keeps a second relay off this database while the handle is open (raises
        RelayBusy when another process has it); None when relays need no such lock."""
        ...

    def current(
        self,
        conn: Connection,
        subject_id: str,
        permission_ids: Sequence[str],
        key_hash: str | None = None,
    ) -> Current:
        """The head, the jurisdiction, the choices on ``permission_ids``, the chain's reference
        and the scopes of the live service key whose hash is ``key_hash``
        (``changes.Current``)."""
        ...

    def write(
        self,
        conn: Connection,
        subject_id: str,
        expected: Head,
        new: Sequence[Event],
        now: datetime,
        choices: Sequence[Choice] = (),
    ) -> None:
        """Append ``new`` after ``expected``, project ``choices`` (the plain-text current state
        the events lead to) and write one outbox row per event; ConcurrencyConflict if another
        writer moved the head."""
        ...

    def current_many(self, conn: Connection, asks: Sequence[Ask]) -> list[Current]:
        """``current`` for each change of a batch, in order (on PostgreSQL in one statement).
        A change may also get choices on other permissions of its subject: all current."""
        ...

    def write_many(self, conn: Connection, writes: Sequence[SubjectWrite]) -> set[str]:
        """Append each subject's events after its expected head, project its choices and write
        its outbox rows, as ``write`` does for one; the ids of the subjects whose head another
        writer had moved (nothing of theirs is written, the others are)."""
        ...

    def find_key(self, conn: Connection, key_hash: str) -> KeyRecord | None:
        """The service key whose secret hashes to ``key_hash`` (revoked or not)."""
        ...

    def outbox_in_order(
        self, conn: Connection, batch: Sequence[OutboxMessage]
    ) -> list[OutboxMessage]:
        """``outbox.in_order`` with this database's form of its lists."""
        ...

    def mark_published(self, conn: Connection, positions: Sequence[int], now: datetime) -> int:
        """Mark outbox rows published; how many were."""
        ...

    def pass_cursor(self, driver: Any, name: str) -> Any:
        """A driver cursor for one pass over a whole table (server-side where there is one)."""
        ...

    def param(self, name: str) -> str:
        """A named placeholder in the driver's own style."""
        ...
