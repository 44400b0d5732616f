"""Group commit: concurrent writes of one process share a transaction and its one commit.

A writer hands its work (a function of an open connection) to ``GroupCommit.run`` and waits.
Whichever writer finds no batch in progress leads: it takes the writes waiting at that moment
(at most ``max_batch``, in arrival order), runs each in a savepoint of one transaction, commits
once, and wakes each writer with its own result or error. Writes that arrive while a batch
commits wait for the next one, led by the first of them: the commit itself is the window, so a
lone writer waits for nothing.

What each write keeps:

- **acknowledged only after its batch commits**: ``run`` returns (or raises) once the commit
  returned, so nothing a caller was told is lost when the process dies (kill -9);
- **a failure fails only that write**: its savepoint is rolled back and its error raised in its
  own thread (a lost optimistic-concurrency race is retried there, by the caller); the others
  commit. A failed commit fails every write of the batch, none of them acknowledged;
- **order**: writes run in arrival order inside the transaction, so two writes to one subject
  in one batch see each other (the second reads the head the first wrote); optimistic
  concurrency against other processes is unchanged (each write checks the head it read).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from consentry.storage.database import Database

T = TypeVar("T")
MAX_BATCH = 64


@dataclass(eq=False)
class _Job(Generic[T]):
    work: Callable[[Connection], T]
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    finished: bool = False
    committed: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommit:
    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Job[Any]] = []
        self._busy = False
        self.batches = 0  # committed batches (for measurements)
        self.writes = 0

    def run(self, work: Callable[[Connection], T]) -> T:
        job: _Job[T] = _Job(work)
        with self._lock:
            self._waiting.append(job)
            if not self._busy:
                self._busy = job.lead = True
        while True:
            if job.lead:
                job.lead = False
                self._lead()
            if job.finished:
                break
            job.wake.wait()
            job.wake.clear()
        if job.error is not None:
            raise job.error
        if not job.committed:
            raise RuntimeError("the batch of this write did not commit")
        return job.result  # type: ignore[no-any-return]

    def _lead(self) -> None:
        with self._lock:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
        try:
            self._commit(batch)
        finally:
            with self._lock:
                if self._waiting:
                    nxt = self._waiting[0]
                    nxt.lead = True
                    nxt.wake.set()
                else:
                    self._busy = False
            for job in batch:
                job.finished = True
                job.wake.set()

    def _commit(self, batch: list[_Job[Any]]) -> None:
        try:
            with self.db.write() as conn:
                for job in batch:
                    try:
                        with conn.begin_nested():
                            job.result = job.work(conn)
                    except Exception as exc:  # this write's own failure: the others go on
                        job.error = exc
        except Exception as exc:  # the commit (or the transaction) failed: nothing committed
            for job in batch:
                if job.error is None:
                    job.result, job.error = None, exc
            return
        for job in batch:
            job.committed = job.error is None
        self.batches += 1
        self.writes += len(batch)
