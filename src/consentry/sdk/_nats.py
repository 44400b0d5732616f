"""Keeping a replica current from NATS JetStream instead of the HTTP change feed.

Start: the stream's last sequence is read *before* ``GET /v1/snapshot``; the follower then reads
the stream from the next sequence. Every change that the snapshot does not hold committed after
the snapshot began, so the relay published it after that sequence: nothing is missed. What is
read twice (in the snapshot and in the stream) is skipped: a message whose outbox position is at
or below the snapshot's cursor is in the snapshot, and the replica ignores a subject's event
whose ``seq`` it already holds.

Order and duplicates: one ordered consumer reads every shard subject in stream order, so one
subject's changes arrive in the order the relay published them. The relay publishes at least
once, so a message can come twice: event ids seen among the last ``dedupe_window`` are dropped.

Staleness: every ``probe_every`` seconds the follower asks JetStream for the stream's last
sequence. Once it has handled every message up to that sequence, the replica is known current
as of the moment of the question, and fresh for ``stale_after`` seconds from then. No answer (NATS
away, the connection dropped) or a consumer that falls behind: the replica fails closed when
that moment is older than ``stale_after``.

Reconnects: a dropped connection is reopened with backoff, and reading resumes after the last
stream sequence handled. When the stream no longer holds that sequence (it was purged, expired,
or recreated), the follower raises :class:`StreamCursorLost` inside and reloads the snapshot.

nats-py is needed only here (``pip install consentry[nats]``); importing ``consentry.sdk`` does
not load it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from consentry.replica import wire
from consentry.replica.core import Replica
from consentry.replica.jetstream import (
    DEFAULT_PREFIX,
    DEFAULT_STREAM,
    MSG_ID,
    POSITION_HEADER,
    LoopThread,
    RecentIds,
    ensure_stream,
)
from consentry.sdk._errors import ConsentryError, CursorExpired, StreamCursorLost, TransportError
from consentry.sdk._follower import FollowStats, apply_change, load_snapshot

log = logging.getLogger("consentry.sdk")


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """Where the relay publishes (``consentry relay`` with ``CONSENTRY_NATS_*``)."""

    url: str = "nats://127.0.0.1:4222"
    stream: str = DEFAULT_STREAM
    subject_prefix: str = DEFAULT_PREFIX
    dedupe_window: int = 100_000
    connect_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class _Message:
    stream_seq: int
    event_id: str | None
    position: int | None
    payload: dict[str, Any] | None  # None: not a JSON object


def _import_nats() -> Any:
    try:
        import nats
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError('follow="nats" needs nats-py: pip install "consentry[nats]"') from exc
    return nats


class _Connection:
    """One NATS connection and one ordered push consumer, on an event loop in a thread.
    Messages go to ``inbox`` (a thread-safe queue), a list at a time: those that arrive
    together are handed over together, which wakes the follower's thread once rather than once
    a message; ``lost`` is set when the connection ends."""

    def __init__(self, options: NatsOptions, inbox: queue.Queue[list[_Message]]) -> None:
        self.options = options
        self.inbox = inbox
        self.lost = threading.Event()
        self._nc: Any = None
        self._js: Any = None
        self._loop = LoopThread("consentry-sdk-nats")

    def _call(self, work: Any, timeout: float) -> Any:
        return self._loop.call(work, timeout)

    def open(self) -> None:
        try:
            self._call(self._open(), self.options.connect_timeout * 2)
        except Exception as exc:
            raise TransportError(f"cannot use NATS at {self.options.url}: {exc!r}") from exc

    async def _open(self) -> None:
        nats = _import_nats()

        async def closed() -> None:
            self.lost.set()

        async def report(exc: Exception) -> None:
            log.debug("NATS %s: %r", self.options.url, exc)

        self.lost.clear()
        self._nc = await nats.connect(
            self.options.url,
            name="consentry-sdk",
            connect_timeout=self.options.connect_timeout,
            allow_reconnect=False,  # this follower reconnects itself and knows where to resume
            max_reconnect_attempts=1,
            error_cb=report,
            closed_cb=closed,
        )
        self._js = self._nc.jetstream(timeout=self.options.connect_timeout)
        # The relay creates the stream; a replica that starts first creates the same one.
        await ensure_stream(self._js, self.options.stream, self.options.subject_prefix)

    def bounds(self) -> tuple[int, int]:
        """(first, last) sequence the stream holds now; raises when NATS does not answer."""
        result: tuple[int, int] = self._call(self._bounds(), self.options.connect_timeout * 2)
        return result

    async def _bounds(self) -> tuple[int, int]:
        if self._js is None or self._nc is None or self._nc.is_closed:
            raise TransportError("not connected to NATS")
        info = await self._js.stream_info(self.options.stream)
        return int(info.state.first_seq), int(info.state.last_seq)

    def subscribe(self, start_seq: int) -> None:
        self._call(self._subscribe(start_seq), self.options.connect_timeout * 2)

    async def _subscribe(self, start_seq: int) -> None:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        inbox = self.inbox
        arrived: list[_Message] = []
        loop = asyncio.get_running_loop()

        def hand_over() -> None:
            inbox.put(arrived.copy())
            arrived.clear()

        async def on_message(msg: Any) -> None:
            seq = int(msg.metadata.sequence.stream)
            headers = msg.headers or {}
            payload: dict[str, Any] | None
            try:
                decoded = json.loads(msg.data)
                payload = decoded if isinstance(decoded, dict) else None
            except ValueError:
                payload = None
            event_id = headers.get(MSG_ID)
            if payload is not None and isinstance(payload.get("event_id"), str):
                event_id = payload["event_id"]
            position = headers.get(POSITION_HEADER)
            if not arrived:  # after the messages already read have gone through here
                loop.call_soon(hand_over)
            arrived.append(
                _Message(
                    seq,
                    event_id,
                    int(position) if position and position.isdigit() else None,
                    payload,
                )
            )

        await self._js.subscribe(
            f"{self.options.subject_prefix}.>",
            stream=self.options.stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start_seq)
            ),
            ordered_consumer=True,
            idle_heartbeat=2.0,
            cb=on_message,
        )

    def drop(self) -> None:
        """Close the connection (the follower reopens it)."""
        try:
            self._call(self._drop(), self.options.connect_timeout * 2)
        except Exception:  # already gone
            log.debug("closing the NATS connection failed", exc_info=True)
        self.lost.set()

    async def _drop(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            await nc.close()

    def stop(self) -> None:
        self.drop()
        self._loop.stop()


class NatsFollower:
    """Follows JetStream for a replica: same interface as the HTTP ``Follower``."""

    def __init__(
        self,
        http: httpx.Client,
        options: NatsOptions,
        *,
        stale_after: float,
        probe_every: float,
        resync_every: float | None,
        on_replica: Callable[[Replica], None],
    ) -> None:
        self.http = http
        self.options = options
        self.stale_after = stale_after
        self.probe_every = probe_every
        self.resync_every = resync_every
        self.on_replica = on_replica
        self.stats = FollowStats()
        self.last_error: ConsentryError | None = None
        self.cursor = "0"  # the snapshot's cursor (the outbox position it is consistent with)
        self.stream_seq = 0  # the last stream sequence handled
        self._inbox: queue.Queue[list[_Message]] = queue.Queue()
        self._seen = RecentIds(options.dedupe_window)
        self._snapshot_position = 0
        self._snapshot_upto = 0  # stream sequence up to which positions may be in the snapshot
        self._probes: list[tuple[float, int]] = []  # (monotonic time asked, last seq then)
        self._must_reload = False
        self._loaded_at = time.monotonic()
        self._stop = threading.Event()
        self._conn = _Connection(options, self._inbox)
        self._thread = threading.Thread(target=self._run, name="consentry-sdk", daemon=True)
        try:
            self._conn.open()
            self.replica = self._load()
        except BaseException:
            self._conn.stop()
            raise

    # -- loading -----------------------------------------------------------------------------
    def _load(self) -> Replica:
        """Snapshot, then read the stream from where the snapshot cannot have reached."""
        try:
            _, last = self._conn.bounds()
        except Exception as exc:
            raise TransportError(f"NATS stream {self.options.stream}: {exc!r}") from exc
        replica, cursor = load_snapshot(self.http, self.stale_after)
        position, _ = wire.parse_cursor(cursor)
        try:
            _, upto = self._conn.bounds()
        except Exception as exc:
            raise TransportError(f"NATS stream {self.options.stream}: {exc!r}") from exc
        self._drain_inbox()
        self.cursor = cursor
        self._snapshot_position, self._snapshot_upto = position, upto
        self.stream_seq = last
        self._probes.clear()
        self._seen = RecentIds(self.options.dedupe_window)
        self._conn.subscribe(last + 1)
        self._loaded_at = time.monotonic()
        return replica

    def _drain_inbox(self) -> None:
        while True:
            try:
                self._inbox.get_nowait()
            except queue.Empty:
                return

    def _reload(self) -> None:
        self._conn.drop()
        self._conn.open()
        self.replica = self._load()
        self.stats.reloads += 1
        self.on_replica(self.replica)

    def _reconnect(self) -> None:
        self._conn.drop()
        self._conn.open()
        first, last = self._conn.bounds()
        wanted = self.stream_seq + 1
        if first > wanted:  # (a purged stream: first is last + 1)
            raise StreamCursorLost(
                f"stream {self.options.stream} starts at {first}; the replica needs {wanted}"
            )
        if last < self.stream_seq:
            raise StreamCursorLost(
                f"stream {self.options.stream} ends at {last}, before the replica's {wanted - 1}"
                " (recreated?)"
            )
        self._drain_inbox()
        self._conn.subscribe(wanted)
        self.stats.reconnects += 1

    # -- the thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.options.connect_timeout * 4 + 5)
        self._conn.stop()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        backoff = 0.1
        next_probe = 0.0
        while not self._stop.is_set():
            try:
                due = self.resync_every is not None and (
                    time.monotonic() - self._loaded_at >= self.resync_every
                )
                if self._must_reload or due:
                    self._reload()
                    self._must_reload = False
                    next_probe = 0.0
                elif self._conn.lost.is_set():
                    self._reconnect()
                    next_probe = 0.0
                if time.monotonic() >= next_probe:
                    self._probe()
                    next_probe = time.monotonic() + self.probe_every
                self.handle(timeout=min(0.1, self.probe_every))
                self.last_error = None
                backoff = 0.1
                continue
            except CursorExpired as exc:
                # Until a reload succeeds, nothing read after the lost point may be applied.
                self._must_reload = True
                self.last_error = exc
                log.warning("consentry replica cannot follow the stream (%s); reloading", exc)
            except ConsentryError as exc:
                self.last_error = exc
                log.warning("consentry replica: %s; retrying in %.1fs", exc, backoff)
            except Exception as exc:  # nats-py errors, timeouts
                self.last_error = TransportError(f"NATS {self.options.url}: {exc!r}")
                log.warning("consentry replica: %r; retrying in %.1fs", exc, backoff)
            self._conn.lost.set()  # a new connection on the next round
            self._stop.wait(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, 5.0)

    def _probe(self) -> None:
        asked = time.monotonic()
        _, last = self._conn.bounds()
        if last < self.stream_seq:
            raise StreamCursorLost(f"stream {self.options.stream} went back to {last}")
        self._probes.append((asked, last))
        self._settle_probes()
        if len(self._probes) > 3:
            # Three questions ago the stream held messages the consumer has still not handed
            # over: start the consumer again from where the replica is.
            self._probes.clear()
            raise TransportError("the JetStream consumer stopped delivering; reconnecting")

    def _settle_probes(self) -> None:
        """Fresh as of the latest probe whose last sequence is handled."""
        fresh_at = None
        while self._probes and self._probes[0][1] <= self.stream_seq:
            fresh_at = self._probes.pop(0)[0]
        if fresh_at is not None:
            self.replica.fresh_until = max(self.replica.fresh_until, fresh_at + self.stale_after)

    def handle(self, timeout: float = 0.0) -> int:
        """Apply the messages waiting (waiting up to ``timeout`` for the first); returns how
        many were handled."""
        try:
            batch = self._inbox.get(timeout=timeout) if timeout > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return 0
        while len(batch) < 5000:
            try:
                batch += self._inbox.get_nowait()
            except queue.Empty:
                break
        replica = self.replica
        applied = 0
        with replica.lock:
            for message in batch:
                applied += self._apply(replica, message)
        self._settle_probes()
        return applied

    def _apply(self, replica: Replica, message: _Message) -> int:
        if message.stream_seq <= self.stream_seq:
            return 0  # a consumer restarted a little early
        self.stream_seq = message.stream_seq
        if message.payload is None:
            self.stats.undecodable += 1
            return 0
        if message.event_id is not None and not self._seen.add(message.event_id):
            self.stats.duplicates += 1
            return 0
        if (
            message.position is not None
            and message.position <= self._snapshot_position
            and message.stream_seq <= self._snapshot_upto
        ):
            self.stats.skipped += 1  # the snapshot holds it
            return 0
        if not apply_change(replica, message.payload, self.stats):
            self.stats.gaps += 1
            # One subject's events come in order, so this is a lost event: reload.
            gap = f"gap in a subject's events at stream sequence {message.stream_seq}"
            raise CursorExpired(409, {"detail": gap})
        return 1

    def poll(self) -> int:
        """Handle what has arrived, and ask the stream where it is (``Consentry.sync``)."""
        if self._conn.lost.is_set():
            self._reconnect()
        self._probe()
        return self.handle()
