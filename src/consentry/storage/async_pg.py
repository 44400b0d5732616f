"""A plain change's two statements on the event loop, for PostgreSQL.

The write path (``changes``) runs in a worker thread on a pooled SQLAlchemy connection. A
plain change (no personal field to seal, no idempotency record) needs no transaction: one
read, then one write statement guarded by optimistic concurrency (``postgres.write_statement``).
Here those same two statements run on psycopg's async connections, from the server's own
event loop, which saves the hop to a thread and back and SQLAlchemy's per-connection work.

``AsyncPool`` keeps a few autocommit connections for one event loop. A connection that failed
(the server restarted, the network dropped) is closed rather than kept; the caller sees the
error and answers by the thread path, whose pool checks connections before use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq

from consentry.domain.events import Event
from consentry.domain.state import Choice
from consentry.storage import changes, postgres

Connect = Callable[[], Awaitable[psycopg.AsyncConnection[Any]]]


class AsyncPool:
    """At most ``size`` connections of one event loop, opened when first needed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connect: Connect, size: int) -> None:
        self.loop = loop
        self._connect = connect
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)
        self.closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                yield conn
            finally:
                # Kept only when it is idle and usable (a failed statement leaves an autocommit
                # connection so; a lost or interrupted one is not).
                usable = (
                    not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE
                )
                if usable and not self.closed:
                    self._idle.append(conn)
                else:
                    conn.pgconn.finish()

    def close(self) -> None:
        """Close the idle connections now, from any thread; the ones in use close when
        returned."""
        self.closed = True
        for conn in self._idle:
            conn.pgconn.finish()
        self._idle.clear()


async def current(
    conn: psycopg.AsyncConnection[Any],
    subject_id: str,
    permission_ids: Sequence[str],
    key_hash: str | None,
) -> changes.Current:
    """``PostgresBackend.current`` on an async connection."""
    params = postgres.current_params(subject_id, permission_ids, key_hash)
    cursor = await conn.execute(postgres.CURRENT, params)
    return postgres.current_of(await cursor.fetchall())


async def write(
    conn: psycopg.AsyncConnection[Any],
    subject_id: str,
    expected: changes.Head,
    new: Sequence[Event],
    now: datetime,
    choices: Sequence[Choice],
) -> None:
    """``PostgresBackend.write`` on an async connection, in one statement that commits on its own;
    ConcurrencyConflict when another writer moved the head first (or, for a subject's first
    change, inserted it first)."""
    if not new:
        return
    sql, params = postgres.write_statement(subject_id, expected, new, now, choices)
    try:
        cursor = await conn.execute(sql, params)
    except psycopg.errors.UniqueViolation as exc:
        raise changes.conflict(subject_id) from exc
    changes.require_moved(subject_id, await cursor.fetchone())
