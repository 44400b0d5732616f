"""The outbox relay: publishes every committed change at least once, in per-subject order,
marks it published, and plans and drives the webhooks it calls for.

A round claims the oldest unpublished rows (a batch), publishes them, then, in one
transaction, plans their webhook deliveries and sets ``published_at``. A crash between
publishing and marking leaves the rows unpublished: the next round publishes them again
(at least once; JetStream drops the copy within its duplicate window, consumers dedupe by
event id after it).

- Where rows can be locked (PostgreSQL: ``Backend.locks_rows``), the round runs in one
  transaction holding the claimed rows (``FOR UPDATE SKIP LOCKED``), so any number of relays
  can run; see ``storage/outbox.in_order`` for per-subject order.
- Elsewhere (SQLite): one relay per database file (a lock file next to it makes sure); the
  batch is read, published, then marked in a short write transaction, so API writers never
  wait on NATS.

Each round looks only from a floor up: the position after the last round's rows. Marking a
row published leaves a dead entry in PostgreSQL's index of unpublished rows until VACUUM, and
a scan from position 0 would walk all of them on every poll. Rows below the floor that are
still unpublished (a transaction that took a lower position and committed later, or rows of a
relay that died holding them) are found by a full sweep, once every ``SWEEP_EVERY`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from sqlalchemy import Connection

from consentry.domain.catalogue import Catalogue
from consentry.events.publisher import FeedPublisher, NatsPublisher, Publisher
from consentry.events.webhooks import WebhookDispatcher, plan
from consentry.storage import deliveries, outbox
from consentry.storage.database import Database
from consentry.storage.outbox import OutboxMessage

log = logging.getLogger("consentry.relay")

BATCH = 500
POLL = 0.05  # seconds between looks at the outbox when idle (local writes wake it at once)
GATHER = 0.005  # seconds before the next round after one that published a part batch
PUMP_EVERY = 0.2  # seconds between looks for due webhook retries
SWEEP_EVERY = 1.0  # seconds between full looks at the outbox (below the floor too)
HOLE_WAIT = 2.0  # seconds the floor waits below a position not yet seen (a writer in flight)
MAX_HOLES = 10_000  # more missing positions than that at once: leave them to the sweep


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    errors: int = 0
    planned: int = 0  # webhook deliveries


class Relay:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        *,
        catalogue: Catalogue | None = None,
        webhooks: WebhookDispatcher | None = None,
        batch_size: int = BATCH,
        poll_interval: float = POLL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.publisher = publisher
        # Webhooks are planned whenever the catalogue has some, even if this process does not
        # deliver them (another relay will).
        self.catalogue = catalogue or (webhooks.catalogue if webhooks is not None else None)
        self.webhooks = webhooks
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._notified = False  # a local commit asked for a look at the outbox
        if webhooks is not None:
            webhooks.on_free = self._wake.set  # a worker is free: pump the next due one now
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.clock = clock
        self.stats = RelayStats()
        self._pumped = 0.0
        self._planned_since_pump = False
        self._floor = 0
        self._swept = 0.0
        # Positions above the last round's floor that no round has seen yet: on PostgreSQL a
        # writer takes its position before it commits, so with many writers the rows commit out
        # of order. The floor stays below such a hole for HOLE_WAIT seconds, so a row that
        # commits a little late goes out with the next round, not with the next sweep (up to
        # SWEEP_EVERY later). A hole that stays empty was rolled back (or is another relay's).
        self._holes: dict[int, float] = {}
        self._top: int | None = None  # the highest position any round has seen

    # -- one round -------------------------------------------------------------------------
    def relay_batch(self) -> int:
        """Publish and mark one batch; returns how many rows went out (0: nothing to do now)."""
        floor = self._floor
        if time.monotonic() - self._swept >= SWEEP_EVERY:
            floor, self._swept = 0, time.monotonic()
        if self.db.backend.locks_rows:
            with self.db.write_engine.begin() as conn:
                claimed = outbox.claim(conn, self.batch_size, floor)
                batch = self.db.backend.outbox_in_order(conn, claimed)
                if batch:
                    self.publisher.publish(batch)
                    self._mark(conn, batch)
        else:
            with self.db.read_engine.begin() as conn:
                claimed = batch = outbox.claim(conn, self.batch_size, floor)
            if batch:
                self.publisher.publish(batch)
                with self.db.write_engine.begin() as conn:
                    live = outbox.still_unpublished(conn, [m.position for m in batch])
                    self._mark(conn, [m for m in batch if m.position in live])
        if claimed:
            # Past what this round published; not past a row it had to hold back, nor past a
            # recent hole.
            sent = {m.position for m in batch}
            held = [m.position for m in claimed if m.position not in sent]
            self._floor = min([*held, *self._track_holes(claimed), claimed[-1].position + 1])
        if batch:
            self.stats.published += len(batch)
            self.stats.batches += 1
        return len(batch)

    def _track_holes(self, claimed: Sequence[OutboxMessage]) -> list[int]:
        """The positions the floor must wait for: recent ones not seen by any round yet."""
        now = time.monotonic()
        seen = {m.position for m in claimed}
        top = claimed[-1].position
        below = claimed[0].position - 1 if self._top is None else self._top
        if top > below:
            if top - below - len(seen) <= MAX_HOLES:
                for position in range(below + 1, top):
                    if position not in seen:
                        self._holes.setdefault(position, now)
            self._top = top
        for position in [
            p for p, since in self._holes.items() if p in seen or now - since > HOLE_WAIT
        ]:
            del self._holes[position]
        return list(self._holes)

    def _mark(self, conn: Connection, batch: Sequence[OutboxMessage]) -> None:
        if self.catalogue is not None:
            owed = plan(self.catalogue, batch)
            if owed:
                self.stats.planned += deliveries.enqueue(conn, owed, self.clock())
                self._planned_since_pump = True
        self.db.backend.mark_published(conn, [m.position for m in batch], self.clock())

    def step(self, outbox: bool = True) -> int:
        """One round: the outbox (unless only a webhook worker woke the loop), then webhooks."""
        moved = self.relay_batch() if outbox else 0
        if self.webhooks is not None:
            now = time.monotonic()
            backlog = self.webhooks.backlog
            if self._planned_since_pump or backlog or now - self._pumped >= PUMP_EVERY:
                self._planned_since_pump = False
                self._pumped = now
                self.webhooks.pump()
        return moved

    def drain(self) -> int:
        """Publish everything pending now and send the webhooks due now (``--once``)."""
        total = 0
        self._floor = 0
        while (moved := self.relay_batch()) > 0:
            total += moved
        if self.webhooks is not None:
            self.webhooks.deliver_due()
        return total

    # -- the loop --------------------------------------------------------------------------
    def run(
        self,
        progress: Callable[[RelayStats], None] | None = None,
        progress_every: float = 1.0,
    ) -> None:
        """Relay until :meth:`stop`. Failures (database, NATS) are logged and retried with
        backoff; nothing is marked published that was not acknowledged."""
        failures = 0
        reported = time.monotonic()
        look, looked = True, 0.0
        while not self._stop.is_set():
            self._wake.clear()
            # The outbox after a local commit, and at least every poll interval (webhook
            # workers finishing wake the loop far more often than that).
            if self._notified or time.monotonic() - looked >= self.poll_interval:
                look = True
            self._notified = False
            if look:
                looked = time.monotonic()
            try:
                moved = self.step(outbox=look)
                failures = 0
            except Exception as exc:
                failures += 1
                self.stats.errors += 1
                if failures == 1:
                    log.warning("relay round failed, retrying: %s", exc, exc_info=True)
                self._stop.wait(min(5.0, 0.1 * 2 ** min(failures, 6)))
                look = True
                continue
            if progress is not None and time.monotonic() - reported >= progress_every:
                reported = time.monotonic()
                progress(self.stats)
            if moved == 0:
                # Woken early by a free webhook worker only: pump, but no outbox query.
                look = not self._wake.wait(self.poll_interval)
            else:
                if moved < self.batch_size:
                    # A part batch: let rows gather for a moment rather than claim them one by
                    # one (every round is a transaction); a full batch goes again at once.
                    self._stop.wait(GATHER)
                look = True

    def notify(self) -> None:
        """A write just committed in this process: look at the outbox now."""
        self._notified = True
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def close(self) -> None:
        self.stop()
        if self.webhooks is not None:
            self.webhooks.close()
        self.publisher.close()


# -- wiring -----------------------------------------------------------------------------------


def single_relay_lock(db: Database) -> IO[bytes] | None:
    """What keeps a second relay off this database, held for as long as the relay runs
    (``Backend.relay_lock``: a lock file next to a SQLite file; None on PostgreSQL). Raises
    RelayBusy when another process has it."""
    return db.backend.relay_lock(db.url)


@dataclass(frozen=True, slots=True)
class RelayConfig:
    nats_url: str | None
    stream: str
    subject_prefix: str
    shards: int
    webhook_timeout: float
    webhook_max_attempts: int
    webhook_backoff: float
    webhook_workers: int = 24


def build_relay(db: Database, catalogue: Catalogue, config: RelayConfig) -> Relay:
    """A relay publishing to NATS JetStream when a URL is given, else to the HTTP feed."""
    publisher: Publisher
    if config.nats_url:
        publisher = NatsPublisher(
            config.nats_url,
            stream=config.stream,
            subject_prefix=config.subject_prefix,
            shards=config.shards,
        )
    else:
        publisher = FeedPublisher()
    webhooks = None
    if any(r.webhook is not None for r in catalogue.recipients.values()):
        webhooks = WebhookDispatcher(
            db,
            catalogue,
            timeout=config.webhook_timeout,
            max_attempts=config.webhook_max_attempts,
            backoff=config.webhook_backoff,
            workers=config.webhook_workers,
        )
    return Relay(db, publisher, catalogue=catalogue, webhooks=webhooks)
