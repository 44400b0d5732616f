"""Engines and transactions for SQLite (embedded default) and PostgreSQL: ``Database`` picks
the backend (``backend.Backend``) its URL names, and owns its engines."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from consentry.storage import postgres, sqlite
from consentry.storage.backend import Backend
from consentry.storage.change_batches import ChangeBatcher


def display_url(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as nothing rather than risk a secret
        return "<database url>"


# The name of the group commit's connection in pg_stat_activity (with the process id).
WRITER_APPLICATION_NAME = "consentry-writer"


_BACKENDS: dict[str, Backend] = {b.name: b for b in (sqlite.BACKEND, postgres.BACKEND)}


def backend_named(name: str) -> Backend:
    """The backend of the database SQLAlchemy calls ``name`` (``sqlite``, ``postgresql``)."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"no storage backend for {name!r} databases") from None


def backend_of(conn: Connection) -> Backend:
    """The backend of the database ``conn`` is connected to."""
    return backend_named(conn.dialect.name)


class Database:
    """One place that owns the engines. On SQLite, writes go through a BEGIN IMMEDIATE engine."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.backend = backend_named(make_url(url).get_backend_name())
        self.dialect = self.backend.name
        self.write_engine, self.read_engine = self.backend.engines(url)
        self._lock = threading.Lock()
        self._batcher: ChangeBatcher | None = None
        self._writer_engine: Engine | None = None

    def batcher(self) -> ChangeBatcher:
        """The group commit of this process's plain changes (``change_batches``), started with
        the first change."""
        with self._lock:
            if self._batcher is None:
                self._batcher = ChangeBatcher(self)
            return self._batcher

    @contextmanager
    def write(
        self, *, statements_commit: bool = False, batch: bool = False
    ) -> Iterator[Connection]:
        """A write transaction. With ``statements_commit`` on PostgreSQL, no transaction: each
        statement commits on its own (autocommit), which saves the round trips of BEGIN and
        COMMIT; only for work whose one write is a single statement, whatever it read before
        (a change guarded by optimistic concurrency). SQLite always gets a transaction.
        ``batch``: on the group commit's own connection (``Backend.writer_engine``)."""
        engine = self._writer() if batch else self.write_engine
        with self._connection(engine, statements_commit) as conn:
            yield conn

    def _writer(self) -> Engine:
        with self._lock:
            if self._writer_engine is None:
                name = f"{WRITER_APPLICATION_NAME}-{os.getpid()}"
                self._writer_engine = self.backend.writer_engine(self.url, name)
            return self._writer_engine

    def after_commit(self) -> list[Callable[[], None]]:
        """Tell whoever listens that a write committed outside ``write``; what comes back is
        their blocking work. Nobody listens here."""
        return []

    @contextmanager
    def read(self, *, statements_commit: bool = False) -> Iterator[Connection]:
        """A read transaction; with ``statements_commit`` on PostgreSQL, none (as ``write``):
        for reads whose statements need not see one snapshot."""
        with self._connection(self.read_engine, statements_commit) as conn:
            yield conn

    @contextmanager
    def _connection(self, engine: Engine, statements_commit: bool) -> Iterator[Connection]:
        if statements_commit and self.backend.statements_commit:
            with engine.connect() as conn:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
            return
        with engine.begin() as conn:
            yield conn

    def flush_log(self) -> None:
        """On SQLite, copy the write-ahead log into the database file and empty it, so page
        images written before (an erased subject's rows among them) leave the disk
        (``Backend.flush_log``)."""
        self.backend.flush_log(self.write_engine)

    def dispose(self) -> None:
        with self._lock:
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()
        with self._lock:
            writer, self._writer_engine = self._writer_engine, None
        if writer is not None:
            writer.dispose()
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
