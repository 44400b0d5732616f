"""What a replica keeps to tell a subject's chains apart, and the row types it is fed.

A chain's tag is the first 64 bits of its reference (random: ``storage/pseudonyms.py``). An
erasure notice names only the reference, and a later chain for the same id has another one, so
a replica keeps one tag per subject row (:class:`ChainTags`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime

# (permission id, "granted" | "denied", notice version, expires_at as POSIX seconds or None)
ChoiceRow = tuple[str, str, str, float | None]


def chain_tag(ref: object) -> int:
    """The first 64 bits of a chain's reference (random: ``storage/pseudonyms.py``); 0 when
    unknown. A replica keeps one per subject to tell the subject's chains apart: an erasure
    notice names only the reference, and a later chain for the same id has another one."""
    if isinstance(ref, str) and len(ref) >= 16:
        try:
            return int(ref[:16], 16)
        except ValueError:
            return 0
    return 0


def timestamp(value: str | datetime | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.timestamp()


class ChainTags:
    """Each row's chain tag, in row order (rows only grow, in increasing order): 16 bytes a
    subject, found by bisection."""

    def __init__(self) -> None:
        self._rows = array("q")
        self._tags = array("Q")

    def _index(self, row: int) -> int:
        at = bisect_left(self._rows, row)
        return at if at < len(self._rows) and self._rows[at] == row else -1

    def new_chain(self, row: int, tag: int) -> bool:
        """Whether a message with chain tag ``tag`` starts a new chain for the subject of
        ``row`` (its earlier chain was erased): both tags known, and different."""
        at = self._index(row)
        known = self._tags[at] if at >= 0 else 0
        return bool(tag and known and known != tag)

    def set(self, row: int, tag: int) -> None:
        if not tag:
            return
        at = self._index(row)
        if at >= 0:
            self._tags[at] = tag
        elif not self._rows or row > self._rows[-1]:
            self._rows.append(row)
            self._tags.append(tag)
        else:  # not expected (rows grow in order), but stay correct
            at = bisect_left(self._rows, row)
            self._rows.insert(at, row)
            self._tags.insert(at, tag)

    def rows_with(self, tag: int) -> Iterator[int]:
        """The rows whose chain has ``tag`` (O(rows))."""
        return (row for row, t in zip(self._rows, self._tags, strict=True) if t == tag)
