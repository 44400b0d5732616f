"""Engines and transactions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from consentry.storage import async_pg

# Connections kept open per process. The API answers from a thread pool (40 threads), so under
# load up to that many requests want a connection at once: a connection opened beyond the kept
# ones is closed again when returned, and opening one costs PostgreSQL a new backend process
# (measured: one new connection per six writes with 10 kept and 64 requests in flight).
POOL_SIZE = 20
POOL_OVERFLOW = 10
PING_AFTER = 1.0


def display_url(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as nothing rather than risk a secret
        return "<database url>"


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


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, poolclass=NullPool if ":memory:" not in url else None)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten with zeros, not left in free space of the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front so two writers queue instead of deadlocking.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# Async connections per event loop, for plain changes (``async_pg``). More cost PostgreSQL more
# per change on a few cores (0.32 ms with 4, 0.43 ms with 16: docs/scaling.md).
ASYNC_POOL_SIZE = 4
LOOP_APPLICATION_NAME = "consentry-loop"


class Database:
    """One place that owns the engines. On SQLite, writes go through a BEGIN IMMEDIATE engine."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            self.write_engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        else:
            self.write_engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
            _ping_when_idle(self.write_engine)
            self.read_engine = self.write_engine
        self._async_pool: async_pg.AsyncPool | None = None
        self._async_lock = threading.Lock()

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
        if self.dialect != "postgresql":
            return None
        from consentry.storage import async_pg  # it reads and writes with ``changes``

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
        if statements_commit and self.dialect == "postgresql":
            with engine.connect() as conn:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
            return
        with engine.begin() as conn:
            yield conn

    def flush_log(self) -> None:
        """On SQLite, copy the write-ahead log into the database file and empty it, so page
        images written before (an erased subject's rows among them) leave the disk; a
        reader still holding old pages makes it partial, and the next call finishes it."""
        if self.dialect != "sqlite":
            return
        raw = self.write_engine.raw_connection()  # outside a transaction: BEGIN would block it
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()

    def dispose(self) -> None:
        with self._async_lock:
            if self._async_pool is not None:
                self._async_pool.close()
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
