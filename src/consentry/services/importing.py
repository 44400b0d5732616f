"""Bulk import of consent records from another platform (``consentry import``).

A file of records (JSON Lines or CSV, the format in docs/import.md; or another platform's export
read through a mapping, ``import_mapping``; lines read by ``import_lines``) is read as a
stream, checked against the catalogue and written in batches, each batch one transaction
(``storage.bulk``); on PostgreSQL by two connections at once, each for a share of the subjects
(``_Writers``).

- Without ``skip_invalid``, the whole file is checked first and nothing is written if any line
  is bad: every bad line is reported with its number, so no subject gets part of its records.
- With it, bad lines go to a rejects file (JSON Lines: line number, reason, the line) and the
  rest is imported.
- Every record becomes one event whose id derives from the record (``domain.imports``): a
  re-run imports nothing twice, and an interrupted import (even ``kill -9``) is resumed by
  running it again, each record landing exactly once.

Memory is bounded by a few batches (read ahead, in flight), whatever the size of the file.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

from sqlalchemy import Connection

from consentry.domain.catalogue_entries import Permission
from consentry.domain.imports import Checker, ImportRecord, InvalidRecord
from consentry.services._ledger_io import retrying, utcnow
from consentry.services.import_lines import (
    Counting,
    Expand,
    Fields,
    Format,
    Raw,
    lines,
)
from consentry.storage import bulk
from consentry.storage.database import Database

BATCH = 10_000
WRITERS = 2  # where the database locks rows, not the whole database (PostgreSQL)
MAX_ERRORS_KEPT = 100


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str


@dataclass(slots=True)
class Progress:
    phase: Literal["checking", "importing"]
    done_bytes: int
    total_bytes: int
    records: int
    started: float


@dataclass(slots=True)
class Summary:
    records: int = 0  # valid records read
    imported: int = 0  # events written
    present: int = 0  # already in the ledger (an earlier run) or repeated in the file
    subjects: int = 0  # chains that grew (counted per batch)
    rejected: int = 0  # bad lines (or records of erased subjects)
    errors: list[Rejected] = field(default_factory=list)  # the first MAX_ERRORS_KEPT
    written: bool = True  # False when the check found bad lines and nothing was written
    seconds: float = 0.0

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(Rejected(line, reason))


class Importer:
    """Imports files into one database, checking records against one catalogue."""

    def __init__(
        self,
        db: Database,
        permissions: dict[str, Permission],
        clock: Callable[[], datetime] = utcnow,
        writers: int = 0,
    ) -> None:
        self.db = db
        self.permissions = permissions
        self.clock = clock
        self.writers = writers  # connections writing at once; 0: as many as suit the database
        self._lock = threading.Lock()  # the summary and the rejects file

    def run(
        self,
        path: Path,
        *,
        fmt: Format,
        source: str,
        skip_invalid: bool = False,
        rejects: IO[str] | None = None,
        expand: Expand | None = None,
        batch: int = BATCH,
        progress: Callable[[Progress], None] | None = None,
    ) -> Summary:
        # An import makes millions of short-lived objects and no cycles: without the cycle
        # collector, which would otherwise walk every batch in flight over and over (~10 % of
        # the CPU), reference counting frees them all the same.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._run(path, fmt, source, skip_invalid, rejects, expand, batch, progress)
        finally:
            if collecting:
                gc.enable()

    def _run(
        self,
        path: Path,
        fmt: Format,
        source: str,
        skip_invalid: bool,
        rejects: IO[str] | None,
        expand: Expand | None,
        batch: int,
        progress: Callable[[Progress], None] | None,
    ) -> Summary:
        started = time.monotonic()
        checker = Checker(self.permissions, self.clock(), source)
        summary = Summary()
        total = path.stat().st_size
        if not skip_invalid:
            self._check_all(path, fmt, expand, checker, summary, progress, total)
            if summary.rejected:
                summary.written = False
                summary.seconds = time.monotonic() - started
                return summary
            summary.records = 0
        # One connection per writer for the whole import: on SQLite its page cache stays warm
        # from one batch to the next (the engine otherwise opens one per transaction). The file
        # is read and checked in a thread of its own, a batch ahead, while the database writes.
        # SQLite has one writer at a time: a second connection would only wait for the first.
        count = (self.writers or WRITERS) if self.db.backend.locks_rows else 1
        with (
            _Writers(self, count, summary, rejects) as writers,
            _Reader(self, path, fmt, expand, checker, summary, rejects, batch) as reader,
        ):
            for records, position in reader:
                writers.write(records)
                if progress is not None and position < total:
                    done = summary.imported + summary.present  # written or found written
                    progress(Progress("importing", position, total, done, started))
            writers.finish()
        if progress is not None:
            done = summary.imported + summary.present
            progress(Progress("importing", total, total, done, started))
        summary.seconds = time.monotonic() - started
        return summary

    def _one(
        self,
        checker: Checker,
        number: int,
        found: Fields | str,
        text: Raw,
        summary: Summary,
        rejects: IO[str] | None,
        named: bool = True,
    ) -> ImportRecord | None:
        try:
            if isinstance(found, str):
                raise InvalidRecord(found)
            record = checker.check(found, number, named=named)
        except InvalidRecord as exc:
            with self._lock:
                summary.reject(number, str(exc))
                if rejects is not None:
                    _reject_line(rejects, number, str(exc), text)
            return None
        summary.records += 1
        return record

    def _check_all(
        self,
        path: Path,
        fmt: Format,
        expand: Expand | None,
        checker: Checker,
        summary: Summary,
        progress: Callable[[Progress], None] | None,
        total: int,
    ) -> None:
        started = time.monotonic()
        with path.open("rb") as raw:
            counted = Counting(raw)
            stream = io.BufferedReader(counted, 1 << 20)
            for number, found, text in lines(stream, fmt, expand):
                self._one(checker, number, found, text, summary, None, named=False)
                if progress is not None and summary.records % BATCH == 0:
                    progress(Progress("checking", counted.count, total, summary.records, started))

    def _write(
        self,
        conn: Connection,
        records: list[ImportRecord],
        summary: Summary,
        rejects: IO[str] | None,
    ) -> None:
        def once() -> bulk.BatchOutcome:
            try:
                with conn.begin():
                    return bulk.write_batch(conn, records, self.clock())
            except bulk.AlreadyWritten:
                with conn.begin():
                    return bulk.write_batch(conn, records, self.clock(), look_up_all=True)

        outcome = retrying(once)
        for work in self.db.after_commit():  # whoever listens to this database's commits
            work()
        with self._lock:
            summary.imported += outcome.imported
            summary.present += outcome.present
            summary.subjects += outcome.subjects
            for record, reason in outcome.refused:
                summary.reject(record.line, reason)
                if rejects is not None:
                    _reject_line(rejects, record.line, reason, "")


def _reject_line(out: IO[str], number: int, reason: str, raw: Raw) -> None:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    out.write(
        json.dumps(
            {"line": number, "error": reason, "text": text.rstrip("\r\n")}, ensure_ascii=False
        )
        + "\n"
    )


_END = object()


class _Writers:
    """Writes batches on ``count`` connections, each owning a share of the subjects (by a hash
    of the subject id), so that a database that locks rows works on several parts at once. A
    subject's records always go to the same connection, in the order of the file, so its chain
    grows as with one connection; each part is a transaction of its own, so a re-run or a
    resumed import writes each record once as before. At most two batches are in flight."""

    def __init__(
        self, importer: Importer, count: int, summary: Summary, rejects: IO[str] | None
    ) -> None:
        self.importer, self.summary, self.rejects = importer, summary, rejects
        self.stack = contextlib.ExitStack()
        self.conns: list[Connection] = []
        self.pools: list[ThreadPoolExecutor] = []
        try:
            for _ in range(count):
                conn = self.stack.enter_context(importer.db.write_engine.connect())
                bulk.prepare(conn)
                self.conns.append(conn)
                if count > 1:
                    pool = ThreadPoolExecutor(1, thread_name_prefix="import-writer")
                    self.stack.callback(pool.shutdown, wait=True, cancel_futures=True)
                    self.pools.append(pool)
        except BaseException:
            self.stack.close()
            raise
        self.flight: deque[list[Future[None]]] = deque()

    def __enter__(self) -> _Writers:
        return self

    def __exit__(self, *_: object) -> None:
        self.stack.close()

    def write(self, records: list[ImportRecord]) -> None:
        write, summary, rejects = self.importer._write, self.summary, self.rejects
        if not self.pools:
            write(self.conns[0], records, summary, rejects)
            return
        n = len(self.pools)
        parts: list[list[ImportRecord]] = [[] for _ in range(n)]
        for record in records:
            parts[hash(record.subject) % n].append(record)
        self.flight.append(
            [
                pool.submit(write, conn, part, summary, rejects)
                for pool, conn, part in zip(self.pools, self.conns, parts, strict=True)
                if part
            ]
        )
        while len(self.flight) > 1:
            self._wait()

    def finish(self) -> None:
        while self.flight:
            self._wait()

    def _wait(self) -> None:
        for future in self.flight.popleft():
            future.result()  # a failed part fails the import (what committed stays: resumable)


class _Reader:
    """Reads, checks and batches a file in its own thread, at most two batches ahead; iterate
    for (batch, bytes read so far). Its errors come out of the iteration."""

    def __init__(
        self,
        importer: Importer,
        path: Path,
        fmt: Format,
        expand: Expand | None,
        checker: Checker,
        summary: Summary,
        rejects: IO[str] | None,
        size: int,
    ) -> None:
        self.args = (importer, path, fmt, expand, checker, summary, rejects, size)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="import-reader", daemon=True)

    def __enter__(self) -> _Reader:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        while self.thread.is_alive():  # let it see the stop when it waits on a full queue
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.05)
        self.thread.join()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        importer, path, fmt, expand, checker, summary, rejects, size = self.args
        try:
            pending: list[ImportRecord] = []
            with path.open("rb") as raw:
                counted = Counting(raw)
                stream = io.BufferedReader(counted, 1 << 20)
                check = checker.check
                for number, found, text in lines(stream, fmt, expand):
                    record = None
                    if type(found) is dict:
                        with contextlib.suppress(InvalidRecord):
                            record = check(found, number)
                    if record is None:  # checked again, to say why
                        importer._one(checker, number, found, text, summary, rejects)
                        continue
                    pending.append(record)
                    if len(pending) >= size:
                        summary.records += len(pending)
                        if not self._put((pending, counted.count)):
                            return
                        pending = []
                summary.records += len(pending)
                if pending and not self._put((pending, counted.count)):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the writing thread, which raises it
            self._put(exc)

    def __iter__(self) -> Iterator[tuple[list[ImportRecord], int]]:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
