"""Periodic checkpoints: ``consentry serve`` signs one every ``CONSENTRY_CHECKPOINT_INTERVAL``
seconds (0: never; ``consentry ledger checkpoint`` still makes one on demand).

Time is cut into windows of the interval, aligned on the epoch (an hourly interval: every
hour on the hour), and the scheduler wakes at each window's start. A checkpoint is made then
only when the ledger changed since the newest one (its tree size or root differ: no empty
duplicates) and none was made in this window yet. Every API process runs a scheduler; on
PostgreSQL they elect one per wake-up through an advisory lock (``storage/checkpoints``), and
the re-check in the transaction that stores the checkpoint makes a late one a no-op, so many
processes still make one checkpoint per window. On SQLite that exclusive write transaction
alone does it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from consentry.config import Settings
from consentry.services import checkpoints
from consentry.services._ledger_io import utcnow
from consentry.services.lifespan import App, running_beside
from consentry.services.receipt_signing import ReceiptKeyError, ReceiptKeys, load_receipt_keys
from consentry.storage import checkpoints as rows
from consentry.storage.database import Database

log = logging.getLogger("consentry.checkpoints")


class CheckpointScheduler:
    """Wakes at the start of each window of ``interval`` seconds and makes the checkpoint that
    is due (``tick``), in a daemon thread between ``start`` and ``stop``."""

    def __init__(
        self,
        db: Database,
        keys: ReceiptKeys,
        interval: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if interval <= 0:
            raise ValueError("the checkpoint interval must be a positive number of seconds")
        self.db = db
        self.keys = keys
        self.interval = interval
        self.clock = clock
        self.ticks = 0  # wake-ups done (tests wait on it)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def window_start(self, at: float) -> float:
        """The start (epoch seconds) of the window holding ``at``."""
        return math.floor(at / self.interval) * self.interval

    def tick(self, window: float) -> checkpoints.Created | None:
        """Make the checkpoint of the window starting at ``window`` (epoch seconds) if it is
        due and this process is elected: the one made, or None."""
        since = datetime.fromtimestamp(window, UTC)

        def skip(newest: rows.CheckpointRow | None, size: int, root: str) -> bool:
            if newest is None:
                return size == 0  # an empty ledger needs no proof yet
            return newest.created_at >= since or (newest.tree_size, newest.root) == (size, root)

        with rows.elected(self.db) as leader:
            if not leader:
                return None
            with self.db.read() as conn:
                newest = rows.newest(conn)
            if newest is not None and newest.created_at >= since:
                return None  # made in this window already (by a process or on demand)
            made = checkpoints.create_unless(self.db, self.keys, skip, self.clock)
        if made is not None:
            log.info(
                "checkpoint %d signed: %d chain(s), root %s…",
                made.number,
                made.tree_size,
                made.root[:16],
            )
        return made

    def _run(self) -> None:
        while not self._stop.is_set():
            due = self.window_start(time.time()) + self.interval
            while (left := due - time.time()) > 0:  # the wait may end a little early
                if self._stop.wait(left):
                    return
            try:
                self.tick(due)
            except Exception:  # the next window tries again; the server goes on
                log.exception("periodic checkpoint failed")
            self.ticks += 1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="consentry-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)  # a checkpoint being made finishes first


def scheduler(settings: Settings, db: Database) -> CheckpointScheduler | None:
    """The scheduler ``settings`` ask for; None when the interval is 0 or no receipt key signs."""
    if settings.checkpoint_interval == 0:
        return None
    try:
        keys = load_receipt_keys(settings)
    except ReceiptKeyError as exc:
        log.warning("periodic checkpoints off: %s", exc)
        return None
    if keys.signer is None:
        log.info("periodic checkpoints off: no receipt signing key (CONSENTRY_RECEIPT_SIGNING_KEY)")
        return None
    return CheckpointScheduler(db, keys, settings.checkpoint_interval)


def with_checkpoints(app: App, settings: Settings, db: Database) -> App:
    """Run the periodic checkpoints for the lifetime of ``app`` (a Starlette application)."""

    def begin() -> CheckpointScheduler | None:
        running = scheduler(settings, db)
        if running is not None:
            running.start()
            log.info("signing a checkpoint every %g s when the ledger changed", running.interval)
        return running

    return running_beside(app, begin)
