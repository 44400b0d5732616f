"""Reading a file of consent records for ``consentry import`` (``importing``): JSON Lines or
CSV, each line's fields (or the reason it has none) with its number, through a mapping's
``expand`` when the file is another platform's export (``import_mapping``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from consentry.domain.imports import InvalidRecord

Format = Literal["jsonl", "csv"]
# One line's fields, or a reason it has none; several records may come from one line.
Fields = dict[str, Any]
Expand = Callable[[Fields], list[Fields]]
Raw = str | bytes  # a line as read: bytes (JSON Lines) or text (CSV)


def format_of(path: Path, given: str | None) -> Format:
    name = (given or path.suffix.lstrip(".")).lower()
    if name in ("jsonl", "ndjson", "json"):
        return "jsonl"
    if name == "csv":
        return "csv"
    raise ValueError(f"cannot tell the format of {path.name!r}: give --format jsonl or csv")


class Counting(io.RawIOBase):
    """Counts the bytes read from a file (the progress bar's position)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.count += n or 0
        return n or 0


# The C scanner under json.loads, without its layers (a failure goes through json.loads).
_scan: Any = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009


def lines(stream: IO[bytes], fmt: Format, expand: Expand | None) -> Iterator[tuple[int, Any, Raw]]:
    """(line number, fields or the reason there are none, the line as read) per record."""
    if fmt == "jsonl":
        for number, data in enumerate(stream, 1):
            if number == 1 and data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]  # a byte order mark
            try:
                text = data.decode()
            except UnicodeDecodeError:
                yield number, "not valid UTF-8", data
                continue
            try:
                found, end = _scan(text, 0)
                if end < len(text) and not text[end:].isspace():
                    raise StopIteration(end)
            except (StopIteration, ValueError, RecursionError):
                if not text.strip():
                    continue
                try:  # json.loads again, for its message (or leading spaces)
                    found = json.loads(text)
                except json.JSONDecodeError as exc:
                    yield number, f"not valid JSON ({exc.msg} at column {exc.colno})", data
                    continue
            if type(found) is not dict:
                yield number, "a line must be a JSON object", data
                continue
            if expand is None:
                yield number, found, data
            else:
                yield from _expanded(number, found, data, expand)
        return
    decoded = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.reader(decoded)
    header = next(reader, None)
    if header is None:
        return
    names = [h.strip() for h in header]
    start = reader.line_num + 1
    for row in reader:
        if not row or row == [""]:
            start = reader.line_num + 1
            continue
        raw = ",".join(row)
        if len(row) != len(names):
            yield start, f"{len(row)} columns where the header has {len(names)}", raw
        elif any("\ufffd" in value for value in row):
            yield start, "not valid UTF-8", raw
        else:
            yield from _expanded(start, dict(zip(names, row, strict=True)), raw, expand)
        start = reader.line_num + 1


def _expanded(
    number: int, found: Fields, raw: Raw, expand: Expand | None
) -> Iterator[tuple[int, Any, Raw]]:
    if expand is None:
        yield number, found, raw
        return
    try:
        records = expand(found)
    except InvalidRecord as exc:
        yield number, str(exc), raw
        return
    for one in records:
        yield number, one, raw
