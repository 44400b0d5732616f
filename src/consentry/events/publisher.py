"""Where the relay publishes outbox rows: the HTTP change feed (embedded) or NATS JetStream.

JetStream: one stream (``CONSENTRY_CHANGES`` by default; stream names cannot contain dots)
holding subjects ``<prefix>.>``; each row goes to ``<prefix>.<shard>``, the shard a stable hash
of the subject's ledger reference, so one subject's changes stay in order on one subject. The
``Nats-Msg-Id`` header is the event id: within the stream's duplicate window the server drops
a re-publication (a relay that crashed between publishing and marking the row), and after it
consumers still dedupe by event id.

The relay is synchronous (SQLAlchemy); nats-py is asyncio. :class:`NatsPublisher` runs its own
event loop in a daemon thread and exposes a blocking ``publish``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from consentry.replica.jetstream import (
    DEFAULT_PREFIX,
    DEFAULT_STREAM,
    LoopThread,
    ensure_stream,
    headers_for,
    subject_for,
)

if TYPE_CHECKING:  # the outbox needs SQLAlchemy
    from consentry.storage.outbox import OutboxMessage

T = TypeVar("T")
log = logging.getLogger("consentry.nats")


def shard_of(key: str, shards: int) -> int:
    """A stable shard for a subject key (the same in every process and language)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % shards


class PublishError(Exception):
    """The batch was not (entirely) acknowledged; the relay will publish it again."""


class Publisher(Protocol):
    """Publishes a batch of outbox rows, in order; returns once all are durably accepted."""

    @property
    def target(self) -> str: ...

    def publish(self, messages: Sequence[OutboxMessage]) -> None: ...

    def close(self) -> None: ...


class FeedPublisher:
    """The embedded default: followers read the outbox itself through ``GET /v1/changes``,
    so publishing is marking the row (which the relay does); nothing is sent anywhere."""

    target = "the HTTP change feed"

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        return None

    def close(self) -> None:
        return None


async def connect_nats(
    url: str,
    name: str,
    timeout: float,
    closed_cb: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """A NATS connection that fails fast instead of retrying inside nats-py: its owner (the
    relay loop, a follower) reconnects with its own backoff and knows where to resume."""

    import nats  # only a server that publishes to NATS needs nats-py

    async def _report(exc: Exception) -> None:
        log.debug("NATS %s: %r", url, exc)

    return await nats.connect(
        url,
        name=name,
        connect_timeout=timeout,
        allow_reconnect=False,
        # nats-py retries a first connection until this is exceeded (forever at 0 or -1).
        max_reconnect_attempts=1,
        reconnect_time_wait=0.1,
        error_cb=_report,
        closed_cb=closed_cb,
    )


@dataclass(eq=False)
class NatsPublisher:
    url: str
    _: KW_ONLY
    stream: str = DEFAULT_STREAM
    subject_prefix: str = DEFAULT_PREFIX
    shards: int = 16
    timeout: float = 5.0

    def __post_init__(self) -> None:
        self._loop = LoopThread("consentry-nats-publisher")
        self._nc: Any = None
        self._js: Any = None
        self._lock = threading.Lock()  # one batch at a time on the one connection

    @property
    def target(self) -> str:
        last = self.shards - 1
        return f"NATS JetStream {self.url}, stream {self.stream} ({self.subject_prefix}.0-{last})"

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return self._loop.call(work, self.timeout * 3)

    def connect(self) -> None:
        """Connect and make sure the stream exists (``publish`` does it when needed, and again
        after the connection was lost)."""
        with self._lock:
            self._connect_unlocked()

    def _connect_unlocked(self) -> None:
        if self._js is None or self._nc is None or self._nc.is_closed:
            self._js = None
            try:
                self._call(self._connect())
            except Exception as exc:
                raise PublishError(f"cannot use NATS at {self.url}: {exc!r}") from exc

    async def _connect(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        self._nc = await connect_nats(self.url, "consentry-relay", self.timeout)
        js = self._nc.jetstream(timeout=self.timeout)
        await ensure_stream(js, self.stream, self.subject_prefix)
        self._js = js

    async def _publish(self, messages: Sequence[OutboxMessage]) -> None:
        # Sent in order on one connection, so the stream stores them in this order; the acks
        # are awaited together (one round trip for the batch, not one per row). No wait_stall:
        # a batch stays far below nats-py's 4000 pending publishes, and a stall timeout costs
        # a task per message.
        pending = []
        for m in messages:
            pending.append(
                await self._js.publish_async(
                    subject_for(self.subject_prefix, shard_of(m.key, self.shards)),
                    m.raw.encode(),
                    headers=headers_for(m.event_id, m.position),
                )
            )
        acks = await asyncio.wait_for(asyncio.gather(*pending), self.timeout)
        wrong = [a.stream for a in acks if a.stream != self.stream]
        if wrong:
            raise PublishError(f"published into stream {wrong[0]!r}, not {self.stream!r}")

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        with self._lock:
            self._connect_unlocked()
            try:
                self._call(self._publish(messages))
            except PublishError:
                raise
            except Exception as exc:
                raise PublishError(f"JetStream did not acknowledge the batch: {exc!r}") from exc

    def close(self) -> None:
        with self._lock:
            self._close_unlocked()

    def _close_unlocked(self) -> None:
        if self._nc is not None:
            try:
                self._call(self._nc.close())
            except Exception:  # closing on the way out: nothing left to save
                pass
            self._nc = None
        self._loop.stop()
