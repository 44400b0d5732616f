"""Engines and transactions for SQLite (embedded default) and PostgreSQL: ``Database`` picks
the backend (``backend.Backend``) its URL names, and owns its engines."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from consentry.storage import async_pg, postgres, sqlite
from consentry.storage.backend import Backend
from consentry.storage.change_batches import ChangeBatcher


def display_url(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as nothing rather than risk a secret
        return "<database url>"


# Async connections per event loop, for plain changes (``async_pg``). More cost PostgreSQL more
# per change on a few cores (0.32 ms with 4, 0.43 ms with 16: docs/scaling.md).
ASYNC_POOL_SIZE = 4
LOOP_APPLICATION_NAME = "consentry-loop"


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
        self._async_pool: async_pg.AsyncPool | None = None
        self._async_lock = threading.Lock()
        self._batcher: ChangeBatcher | None = None

    def batcher(self) -> ChangeBatcher:
        """The group commit of this process's plain changes (``change_batches``), started with
        the first change."""
        with self._async_lock:
            if self._batcher is None:
                self._batcher = ChangeBatcher(self)
            return self._batcher

    @contextmanager
    def write(self, *, statements_commit: bool = False) -> Iterator[Connection]:
        """A write transaction. With ``statements_commit`` on PostgreSQL, no transaction: each
        statement commits on its own (autocommit), which saves the round trips of BEGIN and
        COMMIT; only for work whose one write is a single statement, whatever it read before
        (a change guarded by optimistic concurrency). SQLite always gets a transaction."""
        with self._connection(self.write_engine, statements_commit) as conn:
            yield conn

    def after_commit(self) -> list[Callable[[], None]]:
        """Tell whoever listens that a write committed outside ``write`` (on the event loop);
        what comes back is their blocking work, to run off the loop. Nobody listens here."""
        return []

    def async_pool(self) -> async_pg.AsyncPool | None:
        """The async connections of the running event loop (PostgreSQL; None on SQLite). A
        pool of another loop, gone with its loop, is closed."""
        if not self.backend.statements_commit:  # a plain change on the loop needs no transaction
            return None
        loop = asyncio.get_running_loop()
        with self._async_lock:
            pool = self._async_pool
            if pool is None or pool.loop is not loop or pool.closed:
                if pool is not None:
                    pool.close()
                pool = self._async_pool = async_pg.AsyncPool(loop, self._connect, ASYNC_POOL_SIZE)
            return pool

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        args, kwargs = self.write_engine.dialect.create_connect_args(self.write_engine.url)
        # Named in pg_stat_activity, per process, for operators (and tests) to tell them apart.
        kwargs.setdefault("application_name", f"{LOOP_APPLICATION_NAME}-{os.getpid()}")
        # These connections run two prepared statements, whose custom plans the server would
        # otherwise redo on every call (a cheaper estimate, at 0.13 ms of planning each): the
        # generic plan looks rows up by the same unique indexes.
        kwargs["options"] = f"{kwargs.get('options', '')} -c plan_cache_mode=force_generic_plan"
        return await psycopg.AsyncConnection.connect(*args, autocommit=True, **kwargs)

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
        with self._async_lock:
            if self._async_pool is not None:
                self._async_pool.close()
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
