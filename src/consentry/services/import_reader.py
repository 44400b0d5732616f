"""The reading side of ``consentry import`` (``importing``): reads, checks and batches the file
while the importing process writes, a batch ahead.

Each batch goes over whole: the valid records, the lines refused (number, why, the line as
read) and how far into the file the reader got. At most one batch waits to be taken, so memory
stays bounded whatever the size of the file. Reading a line and checking it against the
catalogue is Python work (~18 µs a record); in a thread of the importing process it shares one
interpreter lock with the writers' Python, in a process of its own it runs on another core
(``Reader`` says which suits which database). A reading process sends through a pipe: when the
importing process dies (even by ``kill -9``), its next send fails and it ends.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from consentry.domain.imports import Checker, ImportRecord, InvalidRecord
from consentry.services.import_lines import Counting, Expand, Format, Raw, lines


@dataclass(frozen=True, slots=True)
class Batch:
    records: list[ImportRecord]
    refused: list[tuple[int, str, Raw]]  # line number, why, the line as read
    position: int  # bytes of the file read so far


class ReaderFailed(RuntimeError):
    """The reading process failed or ended without a word; the message says what it saw."""


_END = "end"


class _Gone(Exception):
    """The importing side no longer listens (it failed, finished early, or died)."""


def _read(
    send: Callable[[object], None],
    path: Path,
    fmt: Format,
    expand: Expand | None,
    checker: Checker,
    size: int,
) -> None:
    """Batches of ``size`` records (or lines refused), each handed to ``send``."""
    try:
        with path.open("rb") as raw:
            counted = Counting(raw)
            stream = io.BufferedReader(counted, 1 << 20)
            check = checker.check
            records: list[ImportRecord] = []
            refused: list[tuple[int, str, Raw]] = []
            for number, found, text in lines(stream, fmt, expand):
                if type(found) is dict:
                    try:
                        records.append(check(found, number))
                    except InvalidRecord as exc:
                        refused.append((number, str(exc), text))
                else:
                    refused.append((number, str(found), text))
                if len(records) + len(refused) >= size:
                    send(Batch(records, refused, counted.count))
                    records, refused = [], []
            if records or refused:
                send(Batch(records, refused, counted.count))
        send(_END)
    except _Gone:
        return
    except BaseException as exc:  # told to the importing side, which raises it
        with contextlib.suppress(_Gone):
            send(ReaderFailed(f"reading {path.name} failed: {exc!r}"))


def _own_process(out: Connection, *args: Any) -> None:
    """The reading process: ``_read`` into a pipe; a pipe nobody reads ends it."""

    def send(item: object) -> None:
        try:
            out.send(item)
        except OSError as exc:  # broken pipe: the importing process is gone
            raise _Gone from exc

    try:
        _read(send, *args)
    finally:
        out.close()


class Reader:
    """Reads in a process of its own (``own_process``) or in a thread of this one; iterate for
    its batches, in the order of the file. Its failure comes out of the iteration as
    ``ReaderFailed``.

    A process of its own suits a database that works in this process (SQLite: the reading
    then runs on the other core instead of taking turns with the writes on one interpreter
    lock). Where a server does the database's work (PostgreSQL), that other core is the
    server's: a thread leaves it free (measured on two cores, 100,000 records, alternately:
    SQLite 4.4-7.7 s in a thread, 4.1-5.9 s in a process; PostgreSQL 4.4-5.2 s in a thread,
    4.9-6.0 s in a process)."""

    def __init__(
        self,
        path: Path,
        fmt: Format,
        expand: Expand | None,
        checker: Checker,
        size: int,
        *,
        own_process: bool,
    ) -> None:
        args = (path, fmt, expand, checker, size)
        self._stop = threading.Event()
        self._pipe: Connection | None = None
        self._out: Connection | None = None
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1)
        self._worker: Any
        if own_process:
            context = multiprocessing.get_context("spawn")  # nothing of this process's threads
            self._pipe, self._out = context.Pipe(duplex=False)
            self._worker = context.Process(
                target=_own_process, args=(self._out, *args), name="import-reader", daemon=True
            )
        else:
            self._worker = threading.Thread(
                target=_read, args=(self._put, *args), name="import-reader", daemon=True
            )

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Gone

    def __enter__(self) -> Reader:
        self._worker.start()
        if self._out is not None:
            self._out.close()  # the reader's end: only the reading process holds it now
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._pipe is not None:
            if self._worker.is_alive():
                self._worker.terminate()
            self._pipe.close()
        self._worker.join()

    def _receive(self) -> object:
        if self._pipe is None:
            return self._queue.get()
        try:
            return self._pipe.recv()
        except EOFError:
            self._worker.join()
            raise ReaderFailed(
                f"the reading process ended without finishing (exit code {self._worker.exitcode})"
            ) from None

    def __iter__(self) -> Iterator[Batch]:
        while True:
            item = self._receive()
            if isinstance(item, str):  # the end
                return
            if isinstance(item, ReaderFailed):
                raise item
            assert isinstance(item, Batch)
            yield item
