"""Following the change stream on NATS JetStream: decoded changes, in stream order, deduped.

Test and benchmark support (``tests/``; ``bench/propagation.py`` imports it too): the tests of
the relay and of scale-out read the stream with it, threaded (``BlockingNatsFollower``) or
asyncio (``NatsFollower``)::

    with BlockingNatsFollower("nats://127.0.0.1:4222", start="new") as follower:
        while (change := follower.get(timeout=1.0)) is not None:
            apply(change.payload)

Each shard subject is in publish order, so one subject's changes arrive in order. The relay
publishes at least once: a change can come twice (after a relay crash, beyond JetStream's
duplicate window), so the follower drops event ids it has seen among the last
``dedupe_window`` ones. After a re-publication, an older change can also arrive after a newer
one of the same subject: apply a payload only when its per-subject ``seq`` is above the one
held. Payloads are the outbox's: ``subject`` (or ``subject_ref`` for ``subject_erased``),
``seq``, ``kind``, ``permission``, ``state``, ``notice_version``, ``source``, ``occurred_at``,
``expires_at``.

The follower starts from ``start``: "new" (what is published from now on), "all", a stream
sequence, or a time (a replica loading a snapshot starts a little before the snapshot's time
and relies on ``seq`` to skip what the snapshot already has). When the connection drops, it
reconnects with backoff and resumes after the last stream sequence it delivered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import queue
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Self

from nats.js.api import ConsumerConfig, DeliverPolicy

from consentry.events.publisher import connect_nats
from consentry.replica.jetstream import (
    DEFAULT_PREFIX,
    DEFAULT_STREAM,
    MSG_ID,
    LoopThread,
    RecentIds,
    ensure_stream,
    position_of,
)

log = logging.getLogger("consentry.nats")

Start = Literal["new", "all"] | int | datetime


class FollowError(Exception):
    """The follower cannot reach NATS or the stream (raised by ``start``)."""


@dataclass(frozen=True, slots=True)
class StreamChange:
    event_id: str
    shard: int | None  # None when the subject does not end in a shard number
    stream_seq: int
    position: int | None  # the outbox position on the server (not an order across relays)
    payload: dict[str, Any]
    raw: bytes


def _shard(subject: str) -> int | None:
    tail = subject.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else None


class NatsFollower:
    """An asyncio follower: ``async with NatsFollower(url) as f: async for change in f``."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = DEFAULT_STREAM,
        subject_prefix: str = DEFAULT_PREFIX,
        shards: Sequence[int] | None = None,
        start: Start = "new",
        dedupe_window: int = 100_000,
        timeout: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.prefix = subject_prefix
        self.filters = (
            [f"{subject_prefix}.>"] if shards is None else [f"{subject_prefix}.{s}" for s in shards]
        )
        self.start_at = start
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.duplicates = 0  # changes dropped as already seen
        self.undecodable = 0  # messages that were not a JSON object
        self._seen = RecentIds(dedupe_window)
        self._next_seq: dict[str, int | None] = {}  # per filter: where to resume
        self._queue: asyncio.Queue[StreamChange | None] = asyncio.Queue()
        self._nc: Any = None
        self._lost = asyncio.Event()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            await self._subscribe(first=True)
        except Exception as exc:
            await self._drop_connection()
            raise FollowError(f"cannot follow {self.stream} at {self.url}: {exc!r}") from exc
        self._supervisor = asyncio.create_task(self._supervise())

    async def _subscribe(self, first: bool) -> None:
        async def closed() -> None:
            self._lost.set()

        self._lost.clear()
        self._nc = await connect_nats(self.url, "consentry-follower", self.timeout, closed)
        js = self._nc.jetstream(timeout=self.timeout)
        await ensure_stream(js, self.stream, self.prefix)
        if first:
            first_seq: int | None = None
            if self.start_at == "new":
                info = await js.stream_info(self.stream)
                first_seq = int(info.state.last_seq) + 1
            elif isinstance(self.start_at, int):
                first_seq = self.start_at
            self._next_seq = dict.fromkeys(self.filters, first_seq)
        for subject in self.filters:
            await js.subscribe(
                subject,
                stream=self.stream,
                config=self._from(self._next_seq[subject]),
                ordered_consumer=True,
                idle_heartbeat=2.0,
                cb=self._callback(subject),
            )

    def _from(self, seq: int | None) -> ConsumerConfig:
        if seq is not None:
            return ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, seq)
            )
        if isinstance(self.start_at, datetime):
            return ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=self.start_at
            )
        return ConsumerConfig(deliver_policy=DeliverPolicy.ALL)

    def _callback(self, subject: str) -> Any:
        async def on_message(msg: Any) -> None:
            seq = int(msg.metadata.sequence.stream)
            self._next_seq[subject] = seq + 1
            headers = msg.headers or {}
            try:
                payload = json.loads(msg.data)
                if not isinstance(payload, dict):
                    raise ValueError("not a JSON object")
            except ValueError:
                self.undecodable += 1
                log.warning("skipping message %s on %s: not a JSON object", seq, msg.subject)
                return
            event_id = str(payload.get("event_id") or headers.get(MSG_ID) or f"seq:{seq}")
            if not self._seen.add(event_id):
                self.duplicates += 1
                return
            await self._queue.put(
                StreamChange(
                    event_id=event_id,
                    shard=_shard(msg.subject),
                    stream_seq=seq,
                    position=position_of(headers),
                    payload=payload,
                    raw=bytes(msg.data),
                )
            )

        return on_message

    async def _supervise(self) -> None:
        delay = 0.1
        while not self._closing:
            await self._lost.wait()
            if self._closing:
                return
            log.warning("NATS connection to %s lost; reconnecting", self.url)
            while not self._closing:
                await asyncio.sleep(delay)
                try:
                    await self._drop_connection()
                    await self._subscribe(first=False)
                    delay = 0.1
                    break
                except Exception as exc:
                    log.debug("reconnecting to %s failed: %r", self.url, exc)
                    delay = min(self.max_backoff, delay * 2)

    async def _drop_connection(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            await nc.close()

    async def next(self, timeout: float | None = None) -> StreamChange | None:
        """The next change; None after ``timeout`` seconds without one, or once closed."""
        try:
            change = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if change is None:
            self._queue.put_nowait(None)  # stay closed for every later call
        return change

    async def close(self) -> None:
        self._closing = True
        self._lost.set()
        if self._supervisor is not None:
            await self._supervisor
        await self._drop_connection()
        self._queue.put_nowait(None)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamChange:
        change = await self.next()
        if change is None:
            raise StopAsyncIteration
        return change


class BlockingNatsFollower:
    """The same follower for threaded code: it runs its own event loop in a daemon thread."""

    def __init__(self, url: str, **options: Any) -> None:
        self._follower_args = (url, options)
        self._changes: queue.Queue[StreamChange | None] = queue.Queue()
        self._loop: LoopThread | None = None
        self._follower: NatsFollower | None = None
        self._pump: concurrent.futures.Future[None] | None = None
        self._closed = False

    @property
    def follower(self) -> NatsFollower:
        assert self._follower is not None, "start() first"
        return self._follower

    def start(self, timeout: float = 10.0) -> Self:
        if self._loop is not None:
            return self
        self._loop = LoopThread("consentry-nats-follower")
        url, options = self._follower_args

        async def begin() -> NatsFollower:
            follower = NatsFollower(url, **options)
            await follower.start()
            return follower

        try:
            self._follower = self._loop.call(begin(), timeout)
        except BaseException:
            self._loop.stop()
            raise
        self._pump = self._loop.submit(self._forward())
        return self

    async def _forward(self) -> None:
        async for change in self.follower:
            self._changes.put(change)
        self._changes.put(None)

    def get(self, timeout: float | None = None) -> StreamChange | None:
        """The next change; None after ``timeout`` seconds without one, or once closed."""
        if self._closed and self._changes.empty():
            return None
        try:
            return self._changes.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop is None:
            return
        if self._follower is not None:
            try:
                self._loop.call(self._follower.close(), 10)
            except Exception:  # closing on the way out: nothing left to save
                log.debug("closing the NATS follower failed", exc_info=True)
        self._loop.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
