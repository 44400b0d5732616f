"""Group commit of plain changes: the concurrent changes of a process read, written and
committed as one batch, on both databases.

A plain change (nothing to seal, no idempotency record: ``services.consents``) is handed to
``ChangeBatcher.submit`` as what it reads (``changes.Ask``) and how it plans its events from what
it read; the caller waits on the returned future. One writer thread per database takes the
changes waiting (at most ``max_batch``, in arrival order; the batch before it committing is
the window, so a lone change waits for nothing) and runs them as one batch:

1. one read for the whole batch (``Backend.current_many``);
2. each change planned in arrival order; a later change to a subject already changed in the
   batch plans against what the earlier one left (its head, its choices), so it chains after it;
3. one write for the whole batch (``Backend.write_many``), each subject guarded by the head the
   batch read, and one commit.

What each change keeps:

- **acknowledged only after its batch commits**: the future is resolved once the commit
  returned, so nothing a caller was told is lost when the process dies (kill -9);
- **per-subject order**: arrival order within a batch, batch after batch;
- **optimistic concurrency**: a subject whose head another writer (another process) moved
  since the batch read it has nothing written; its changes fail with ConcurrencyConflict and
  their callers retry (``services._ledger_io.retrying``), the batch's other subjects commit;
- **a failure fails only that change**: a change whose planning raises (a refused key, say)
  gets its error and the rest of the batch goes on; if the batch's write itself fails, the
  batch is undone and each change is run again as a batch of its own, so only the change at
  fault fails.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from consentry.domain.planning import ChangeOutcome, Planned
from consentry.storage.changes import Ask, Current, Head, SubjectWrite, conflict

if TYPE_CHECKING:
    from consentry.storage.database import Database

MAX_BATCH = 256

Plan = Callable[[Current], Planned]


@dataclass(eq=False, slots=True)
class _Pending:
    """A queued change and who waits for it: a thread (``future``) or an event loop
    (``waiter``, on ``loop``)."""

    ask: Ask
    plan: Plan
    now: datetime
    future: Future[ChangeOutcome] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    waiter: asyncio.Future[ChangeOutcome] | None = None

    def begin(self) -> bool:
        """False when the caller gave up before the batch began: the change is dropped. From
        here on it can no longer be cancelled (it may commit with nobody waiting)."""
        if self.future is not None:
            return self.future.set_running_or_notify_cancel()
        return self.waiter is not None and not self.waiter.cancelled()


Answer = ChangeOutcome | BaseException


class ChangeBatcher:
    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._ready = threading.Condition()
        self._waiting: deque[_Pending] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # committed batches and the changes in them (for measurements)
        self.changes = 0

    def submit(self, ask: Ask, plan: Plan, now: datetime) -> Future[ChangeOutcome]:
        """Queue a change; its future gets the change's outcome once its batch committed, or
        its error (ConcurrencyConflict: read again and submit again)."""
        pending = _Pending(ask, plan, now, future=Future())
        self._queue(pending)
        return pending.future  # type: ignore[return-value]

    def submit_on_loop(self, ask: Ask, plan: Plan, now: datetime) -> asyncio.Future[ChangeOutcome]:
        """``submit`` for a caller on the running event loop: the loop is woken once per batch
        for all of its changes, not once per change."""
        loop = asyncio.get_running_loop()
        pending = _Pending(ask, plan, now, loop=loop, waiter=loop.create_future())
        self._queue(pending)
        return pending.waiter  # type: ignore[return-value]

    def _queue(self, pending: _Pending) -> None:
        with self._ready:
            if self._closed:
                raise RuntimeError("the database is closed")
            self._waiting.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="consentry-group-commit", daemon=True
                )
                self._thread.start()
            self._ready.notify()

    def close(self) -> None:
        """Stop the writer once the changes already queued are written."""
        with self._ready:
            self._closed = True
            self._ready.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._closed:
                    self._ready.wait()
                if not self._waiting:
                    return
                count = min(len(self._waiting), self.max_batch)
                taken = [self._waiting.popleft() for _ in range(count)]
            batch = [p for p in taken if p.begin()]
            if not batch:
                continue
            try:
                answers = self._commit(batch)
            except BaseException as exc:  # the writer outlives any batch
                answers = [(pending, exc) for pending in batch]
            _deliver(answers)

    def _commit(self, batch: list[_Pending]) -> list[tuple[_Pending, Answer]]:
        try:
            results = self._write(batch)
        except Exception as exc:
            if len(batch) == 1:
                return [(batch[0], exc)]
            # find the change at fault: each alone
            return [answer for pending in batch for answer in self._commit([pending])]
        self.batches += 1
        self.changes += len(batch)
        return list(zip(batch, results, strict=True))

    def _write(self, batch: list[_Pending]) -> list[Answer]:
        backend = self.db.backend
        results: list[Answer] = []
        after: dict[str, Current] = {}  # per subject, what the batch's changes so far left
        writes: dict[str, SubjectWrite] = {}
        with self.db.write(statements_commit=True, batch=True) as conn:
            found = backend.current_many(conn, [p.ask for p in batch])
            for pending, read in zip(batch, found, strict=True):
                sid = pending.ask.subject_id
                prior = _after_earlier(after.get(sid), read)
                try:
                    planned = pending.plan(prior)
                except Exception as exc:  # this change's own failure: the others go on
                    results.append(exc)
                    after[sid] = prior
                    continue
                results.append(planned.outcome)
                after[sid] = _with(prior, planned) if planned.new else prior
                if planned.new:
                    _add(writes, sid, prior, planned, pending.now)
            lost = backend.write_many(conn, list(writes.values()))
        # Every change of a subject that lost its race read a head that is gone (a change
        # that asked for nothing new answered from it too): each reads again.
        for i, pending in enumerate(batch):
            if pending.ask.subject_id in lost and not isinstance(results[i], BaseException):
                results[i] = conflict(pending.ask.subject_id)
        return results


def _deliver(answers: list[tuple[_Pending, Answer]]) -> None:
    """Answer each change's caller: a thread at once, each event loop once for all of its."""
    on_loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[ChangeOutcome], Answer]]]
    on_loops = {}
    for pending, answer in answers:
        if pending.future is not None:
            if isinstance(answer, BaseException):
                pending.future.set_exception(answer)
            else:
                pending.future.set_result(answer)
        elif pending.loop is not None and pending.waiter is not None:
            on_loops.setdefault(pending.loop, []).append((pending.waiter, answer))
    for loop, settled in on_loops.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _settle(settled: list[tuple[asyncio.Future[ChangeOutcome], Answer]]) -> None:
    for waiter, answer in settled:
        if waiter.done():  # cancelled meanwhile
            continue
        if isinstance(answer, BaseException):
            waiter.set_exception(answer)
        else:
            waiter.set_result(answer)


def _after_earlier(earlier: Current | None, read: Current) -> Current:
    """What a change reads when an earlier change of its batch touched the same subject: the
    head, reference and jurisdiction that one left, its choices over the ones read (this
    change's key is its own)."""
    if earlier is None:
        return read
    return Current(
        earlier.head,
        earlier.jurisdiction,
        {**read.choices, **earlier.choices},
        read.key_scopes,
        earlier.ref,
    )


def _with(prior: Current, planned: Planned) -> Current:
    last = planned.new[-1]
    choices = {**prior.choices, **{c.permission_id: c for c in planned.projected}}
    return Current(
        Head(last.seq, last.hash, True), prior.jurisdiction, choices, prior.key_scopes, prior.ref
    )


def _add(
    writes: dict[str, SubjectWrite], sid: str, prior: Current, planned: Planned, now: datetime
) -> None:
    """Add a change's events and choices to its subject's write (each permission's last
    choice projected once)."""
    write = writes.get(sid)
    if write is None:
        writes[sid] = SubjectWrite(
            sid, prior.ref, prior.head, list(planned.new), list(planned.projected), now
        )
        return
    write.new.extend(planned.new)
    latest: dict[str, Any] = {c.permission_id: c for c in write.choices}
    latest.update({c.permission_id: c for c in planned.projected})
    write.choices = list(latest.values())
    write.now = now
