"""The snapshot and change-feed formats, shared by the server (writing) and the SDK (reading).

Both are JSON lines. A snapshot is a header, one line per subject, and a trailer::

    {"format": "consentry.snapshot.v1", "cursor": "42", "catalogue": {...}, "subjects": 2}
    ["user-1", 3, null, 5, 2, []]
    ["user-2", 1, "US-CA", 1, 0, [[0, 1798761600.0]]]
    {"end": true, "subjects": 2}

A subject line is ``[id, seq, jurisdiction, c0, c1, expiries, ref]``: ``c0``/``c1`` are the masks of
its stored codes (bit i = permission i of the header's catalogue, in file order: 01 granted,
10 denied, 11 granted on a notice that changed since) and ``expiries`` lists ``[bit, POSIX
seconds]`` for time-limited grants; ``ref`` is the reference of the subject's chain (random,
named again by an erasure notice; absent in lines of earlier servers). A change line is
``{"cursor": "43", "change": {...}}``, the change being the outbox payload.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from consentry.domain.compiled import CompiledCatalogue
from consentry.domain.rules import Code
from consentry.replica.chains import ChoiceRow

SNAPSHOT_FORMAT = "consentry.snapshot.v1"
NDJSON = "application/x-ndjson"
CURSOR_HEADER = "Consentry-Cursor"

SubjectLine = tuple[str, int, str | None, int, int, dict[int, float], str | None]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def header_line(compiled: CompiledCatalogue, cursor: str, subjects: int) -> str:
    return _dumps(
        {
            "format": SNAPSHOT_FORMAT,
            "cursor": cursor,
            "catalogue": compiled.catalogue.model_dump(mode="json"),
            "subjects": subjects,
        }
    )


def subject_line(
    compiled: CompiledCatalogue,
    subject: str,
    seq: int,
    jurisdiction: str | None,
    choices: Iterable[ChoiceRow],
    ref: str | None = None,
) -> str:
    c0 = c1 = 0
    expiries: list[list[float]] = []
    for pid, state, version, expires in choices:
        bit = compiled.bit.get(pid)
        if bit is None:
            continue
        code = compiled.static_code(bit, state, version)
        if code is not Code.DENIED:
            c0 |= 1 << bit
            if expires is not None:
                expiries.append([bit, expires])
        if code is not Code.GRANTED:
            c1 |= 1 << bit
    line: list[Any] = [subject, seq, jurisdiction, c0, c1, expiries]
    if ref is not None:
        line.append(ref)
    return _dumps(line)


def trailer_line(subjects: int) -> str:
    return _dumps({"end": True, "subjects": subjects})


def parse_subject(line: Any) -> SubjectLine:
    subject, seq, jurisdiction, c0, c1, expiries = line[:6]
    ref = line[6] if len(line) > 6 and isinstance(line[6], str) else None
    return (
        str(subject),
        int(seq),
        None if jurisdiction is None else str(jurisdiction),
        int(c0),
        int(c1),
        {int(bit): float(ts) for bit, ts in expiries},
        ref,
    )


def change_line(cursor: str, payload: str | dict[str, Any]) -> str:
    body = payload if isinstance(payload, str) else _dumps(payload)
    return f'{{"cursor":"{cursor}","change":{body}}}'


# A cursor is "<position>" or "<position>.<event id at that position>". The event id lets the
# server notice when the outbox row a follower stopped at was deleted and its position reused
# (erasure deletes a subject's outbox rows; SQLite may then hand the same position out again).
CURSOR_PATTERN = r"^[0-9]{1,19}(\.[0-9A-Za-z-]{1,64})?$"


def format_cursor(position: int, event_id: str | None) -> str:
    return f"{position}.{event_id}" if event_id else str(position)


def parse_cursor(cursor: str) -> tuple[int, str | None]:
    position, _, event_id = cursor.partition(".")
    return int(position), event_id or None
