"""The replica inside the server process, behind POST /v1/decisions.

It starts on the first decision asked (a CLI command or a test that never decides pays
nothing): a background thread loads every subject from one consistent snapshot, then follows
the outbox every ``poll_interval``. Until it has caught up, and whenever it has not heard from
the database for ``max_staleness`` seconds, ``decide`` returns None and the caller asks the
database instead, so an answer is never staler than that bound.

Read-your-writes: the container's database is an :class:`ObservedDatabase`, which calls
:meth:`ServerReplica.sync` after every write transaction this process commits, whatever service
made it (a PUT, a page toggle, a GPC opt-out, an erasure). ``sync`` reads the outbox up to that
write before the write returns to its caller. Writes made by other processes arrive within
``poll_interval``.

One answer stays with the database: requests that involve device data (device reports are not
in the outbox). Defaults that depend on the subject's jurisdiction are answered here: the
snapshot carries each subject's jurisdiction and a change of it is in the outbox
(``jurisdiction_set``), as for SDK replicas.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass
from datetime import datetime

from sqlalchemy import Connection

from consentry.domain.compiled import Plan
from consentry.domain.decisions import CatalogueIndex, Decision, DecisionRequest
from consentry.feed import reader
from consentry.feed.keycache import KeyCache
from consentry.replica.core import Replica
from consentry.storage import replication as stored
from consentry.storage.database import Database

log = logging.getLogger("consentry.replica")

IDLE, LOADING, READY, CLOSED = "idle", "loading", "ready", "closed"
BATCH = 1000
# (subject, purpose, categories, recipient): a decision request without device data.
DecisionTuple = tuple[str, str, tuple[str, ...], str | None]


class ObservedDatabase(Database):
    """A Database that tells listeners after each write commits. A listener returns at once,
    with the blocking work it needs done (or None); ``write`` does it in the writer's thread,
    a write on the event loop does it in a worker thread."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.committed: list[Callable[[], Callable[[], None] | None]] = []

    @contextmanager
    def write(
        self, *, statements_commit: bool = False, batch: bool = False
    ) -> Iterator[Connection]:
        with super().write(statements_commit=statements_commit, batch=batch) as conn:
            yield conn
        for work in self.after_commit():
            work()

    def after_commit(self) -> list[Callable[[], None]]:
        return [work for listener in self.committed if (work := listener()) is not None]


@dataclass(eq=False)
class ServerReplica:
    db: Database
    index: CatalogueIndex
    _: KW_ONLY
    poll_interval: float = 0.1
    max_staleness: float = 2.0
    max_lag: int = 100_000

    def __post_init__(self) -> None:
        self.replica = self._new_replica()
        self.status = IDLE
        self.cursor = "0"
        # Bumped after every local write: long polls on /v1/changes watch it to answer at once.
        self.writes = 0
        self._lock = threading.Lock()  # one follower at a time; guards status and cursor
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._synced = 0.0
        # Service keys verified for the decision and feed endpoints (see keycache).
        self.keys: KeyCache[object] = KeyCache()
        if isinstance(self.db, ObservedDatabase):
            self.db.committed.append(self.noted_write)

    def _new_replica(self) -> Replica:
        return Replica(self.index.catalogue, compiled=self.index.compiled)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self.status != IDLE:
                return
            self.status = LOADING
            self._thread = threading.Thread(target=self._run, name="consentry-replica", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self.status = CLOSED
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def ready(self) -> bool:
        return self.status == READY and time.monotonic() - self._synced <= self.max_staleness

    def wait_ready(self, timeout: float = 10.0) -> bool:
        self.start()
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() >= deadline or self.status == CLOSED:
                return False
            time.sleep(0.005)
        return True

    # -- decisions ---------------------------------------------------------------------------
    def decide(self, request: DecisionRequest, now: datetime) -> Decision | None:
        """The decision from memory, or None when the database must answer."""
        if not self.ready():
            self.start()
            return None
        if request.device is not None:
            return None
        return self.answer(
            request.subject, request.purpose, request.categories, request.recipient, now.timestamp()
        )

    def answer(
        self,
        subject: str,
        purpose: str,
        categories: tuple[str, ...],
        recipient: str | None,
        now: float,
    ) -> Decision | None:
        """``decide`` for a request without device, the caller having checked ``ready()``
        (the HTTP fast path asks once for a whole batch)."""
        plan = self.index.compiled.plan(purpose, categories, recipient)
        if isinstance(plan, Decision):
            return plan
        if plan.any_device:
            return None
        return self.replica.check(subject, purpose, categories, recipient, now)

    def answer_many(self, checks: Sequence[DecisionTuple], now: float) -> list[Decision] | None:
        """``answer`` for each check, in order; None when any needs the database (the caller
        has checked ``ready()``)."""
        compiled = self.index.compiled
        plans = compiled.plans
        plan_of = compiled.plan
        refusals: dict[int, Decision] = {}
        planned: list[tuple[str, Plan]] = []
        for i, (subject, purpose, categories, recipient) in enumerate(checks):
            plan = plans.get((purpose, categories, recipient))
            if plan is None:
                plan = plan_of(purpose, categories, recipient)
            if type(plan) is Plan:
                if plan.any_device:
                    return None
                planned.append((subject, plan))
            else:
                refusals[i] = plan  # type: ignore[assignment]
        decided = self.replica.check_planned(planned, now)
        if not refusals:
            return decided
        answers = iter(decided)
        return [refusals[i] if i in refusals else next(answers) for i in range(len(checks))]

    # -- following the outbox ----------------------------------------------------------------
    def noted_write(self) -> Callable[[], None] | None:
        """A local write committed: long polls may answer now, and the replica, when it serves
        decisions, catches up with it before the writer answers (``sync``)."""
        self.writes += 1
        # While it loads, ``sync`` waits for the load to finish (under the lock) and then
        # catches up: a write that commits as the load ends is not missed.
        return self.sync if self.status in (LOADING, READY) else None

    def sync(self) -> None:
        """Catch up with the outbox now (after a local write commits)."""
        with self._lock:
            if self.status != READY:
                return  # the loader's last catch-up, under this lock, will include it
            try:
                while self._follow(self.replica) == BATCH:
                    pass
            except reader.CursorGone:
                self.status = LOADING  # the follower thread reloads
            except Exception:  # the write itself succeeded; the follower retries
                log.exception("replica sync after a local write failed")

    def _run(self) -> None:
        backoff = self.poll_interval
        while not self._stop.is_set():
            try:
                if self.status == LOADING:
                    self._load()
                else:
                    with self._lock:
                        if self.status == READY:
                            while self._follow(self.replica) == BATCH:
                                pass
                if self.status == READY:
                    self._synced = time.monotonic()
                backoff = self.poll_interval
            except reader.CursorGone as exc:
                log.warning("replica fell off the change feed (%s); reloading", exc)
                with self._lock:
                    if self.status == READY:
                        self.status = LOADING
            except Exception:  # the database is away: keep trying; decisions fall back
                log.exception("replica sync failed; retrying in %.1fs", backoff)
                backoff = min(backoff * 2, 5.0)
            self._stop.wait(backoff)

    def _load(self) -> None:
        cursor = reader.settled_head(self.db)
        if cursor is None:
            return  # writers did not finish in time; the next round tries again
        replica = self._new_replica()
        with reader.snapshot(self.db) as snapshot, replica.lock:
            for record in snapshot.subjects():
                replica.put(
                    record.subject, record.seq, record.jurisdiction, record.choices, ref=record.ref
                )
        loaded_at = cursor
        with self._lock:
            if self.status != LOADING:
                return
            self.cursor = loaded_at
            while self._follow(replica) == BATCH:
                pass
            self.replica = replica
            self.status = READY
            self._synced = time.monotonic()
        log.info("replica ready: %d subjects at cursor %d", len(replica), self.cursor)

    def _follow(self, replica: Replica) -> int:
        """Apply the next batch of changes (hold ``_lock``)."""
        changes = reader.read_changes(self.db, self.cursor, BATCH, max_lag=self.max_lag)
        if not changes:
            return 0
        with replica.lock:
            for change in changes:
                if not replica.apply(change.payload):
                    # A gap for this subject: take it whole from the database.
                    subject = str(change.payload["subject"])
                    record = stored.load_subject(self.db, subject)
                    if record is None:  # erased since: nothing of it stays
                        replica.put(subject, 0, None, [], force=True)
                    else:
                        replica.put(
                            record.subject,
                            record.seq,
                            record.jurisdiction,
                            record.choices,
                            ref=record.ref,
                        )
        self.cursor = changes[-1].cursor
        return len(changes)
