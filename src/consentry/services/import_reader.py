"""The reading side of ``consentry import`` (``importing``): a process of its own that reads,
checks and batches the file while the importing process writes.

Reading a line and checking it against the catalogue is Python work (~18 µs a record), and in
a thread of the importing process it shares one interpreter lock with the writers' own Python
(planning each event, binding its rows): the two took turns instead of running at once. In its
own process the reading runs on the other core. It sends each batch through a pipe, whole:
the valid records, the lines it refused (number, why, the line as read) and how far into the
file it got. The pipe holds no more than one batch in flight, so memory stays bounded whatever
the size of the file; and when the importing process dies (even ``kill -9``), the reader's next
send fails and it ends.
"""

from __future__ import annotations

import io
import multiprocessing
from collections.abc import Iterator
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


def _read(
    out: Connection, path: Path, fmt: Format, expand: Expand | None, checker: Checker, size: int
) -> None:
    """The reading process: batches of ``size`` records (or lines refused) into ``out``."""
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
                    out.send(Batch(records, refused, counted.count))
                    records, refused = [], []
            if records or refused:
                out.send(Batch(records, refused, counted.count))
        out.send(_END)
    except (BrokenPipeError, ConnectionResetError):
        return  # the importing process is gone
    except BaseException as exc:  # told to the importing process, which raises it
        try:
            out.send(ReaderFailed(f"reading {path.name} failed: {exc!r}"))
        except OSError:
            pass
    finally:
        out.close()


class Reader:
    """Starts the reading process; iterate for its batches, in the order of the file. Its
    failure comes out of the iteration as ``ReaderFailed``."""

    def __init__(
        self, path: Path, fmt: Format, expand: Expand | None, checker: Checker, size: int
    ) -> None:
        context = multiprocessing.get_context("spawn")  # nothing of this process's threads
        self._in, out = context.Pipe(duplex=False)
        self._process: Any = context.Process(
            target=_read,
            args=(out, path, fmt, expand, checker, size),
            name="import-reader",
            daemon=True,
        )
        self._out = out

    def __enter__(self) -> Reader:
        self._process.start()
        self._out.close()  # the reader's end: only the reader holds it now
        return self

    def __exit__(self, *_: object) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._in.close()

    def __iter__(self) -> Iterator[Batch]:
        while True:
            try:
                item = self._in.recv()
            except EOFError:
                self._process.join()
                raise ReaderFailed(
                    f"the reading process ended without finishing (exit code "
                    f"{self._process.exitcode})"
                ) from None
            if isinstance(item, str):  # the end
                return
            if isinstance(item, ReaderFailed):
                raise item
            yield item
