"""The reading side of ``consentry import`` (``importing``): reads, checks and batches the file
while the importing process writes, a batch ahead.

Each batch goes over whole: the valid records, the lines refused (number, why, the line as
read) and how far into the file the reader got. At most one batch waits to be taken, so memory
stays bounded whatever the size of the file. Reading a line and checking it against the
catalogue is Python work (~18 µs a record); in a thread of the importing process it shares one
interpreter lock with the writers' Python, in a process of its own it runs on another core
(``Reader`` says which suits which database). A reading process is this module run by the same
Python, sending pickled batches to its stdout: when the importing process dies (even by
``kill -9``), its next send fails and it ends.
"""

from __future__ import annotations

import contextlib
import io
import pickle  # nosec B403: between this process and the reader it starts, nothing else
import queue
import subprocess  # nosec B404: runs this module in sys.executable
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

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


def _own_process() -> None:
    """The reading process (``python -m consentry.services.import_reader``): its search path
    and arguments come pickled on stdin, its batches go pickled to stdout; a stdout nobody
    reads any more ends it."""
    given, out = sys.stdin.buffer, sys.stdout.buffer
    sys.path[:] = pickle.load(given)  # nosec B301 (the importer's path: its mapping's code)
    args = pickle.load(given)  # nosec B301 (from the process that started this one)

    def send(item: object) -> None:
        try:
            pickle.dump(item, out, pickle.HIGHEST_PROTOCOL)
            out.flush()
        except OSError as exc:  # broken pipe: the importing process is gone
            raise _Gone from exc

    _read(send, *args)


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
        self._args = (path, fmt, expand, checker, size)
        self._stop = threading.Event()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1)
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        if not own_process:
            self._thread = threading.Thread(
                target=_read, args=(self._put, *self._args), name="import-reader", daemon=True
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
        if self._thread is not None:
            self._thread.start()
            return self
        # A program of its own (not ``multiprocessing``, which would run the caller's main
        # script again in the child unless it is guarded).
        command = [sys.executable, "-m", "consentry.services.import_reader"]
        self._process = subprocess.Popen(  # nosec B603 (this module, by this Python)
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self._process.stdin is not None
        with self._process.stdin as given:
            pickle.dump(sys.path, given)
            pickle.dump(self._args, given, pickle.HIGHEST_PROTOCOL)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()

    @property
    def alive(self) -> bool:
        """Whether the reading thread or process still runs."""
        if self._thread is not None:
            return self._thread.is_alive()
        return self._process is not None and self._process.poll() is None

    def _receive(self) -> object:
        if self._process is None:
            return self._queue.get()
        assert self._process.stdout is not None
        try:
            return pickle.load(self._process.stdout)  # nosec B301 (our own reader's)
        except EOFError:
            code = self._process.wait()
            raise ReaderFailed(
                f"the reading process ended without finishing (exit code {code})"
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


if __name__ == "__main__":
    # By the module's own name: the batches it pickles are then of classes the importer knows.
    from consentry.services import import_reader

    import_reader._own_process()
