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

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

import httpx

from consentry.replica import wire
from consentry.replica.core import Replica
from consentry.replica.jetstream import RecentIds
from consentry.sdk._errors import ConsentryError, CursorExpired, StreamCursorLost, TransportError
from consentry.sdk._follower import FollowStats, apply_change, load_snapshot
from consentry.sdk._nats_connection import NatsOptions, StreamConnection, StreamMessage

log = logging.getLogger("consentry.sdk")


@dataclass(eq=False)
class NatsFollower:
    """Follows JetStream for a replica: same interface as the HTTP ``Follower``."""

    http: httpx.Client
    options: NatsOptions
    _: KW_ONLY
    stale_after: float
    probe_every: float
    resync_every: float | None
    on_replica: Callable[[Replica], None]

    def __post_init__(self) -> None:
        self.stats = FollowStats()
        self.last_error: ConsentryError | None = None
        self.cursor = "0"  # the snapshot's cursor (the outbox position it is consistent with)
        self.stream_seq = 0  # the last stream sequence handled
        self._inbox: queue.Queue[list[StreamMessage]] = queue.Queue()
        self._seen = RecentIds(self.options.dedupe_window)
        self._snapshot_position = 0
        self._snapshot_upto = 0  # stream sequence up to which positions may be in the snapshot
        self._probes: list[tuple[float, int]] = []  # (monotonic time asked, last seq then)
        self._must_reload = False
        self._loaded_at = time.monotonic()
        self._stop = threading.Event()
        self._conn = StreamConnection(self.options, self._inbox)
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

    def _apply(self, replica: Replica, message: StreamMessage) -> int:
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
