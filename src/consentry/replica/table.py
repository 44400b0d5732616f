"""Subject ids to row numbers without one Python object per subject.

A dict of a million ``str`` keys costs ~140 bytes a subject; this table keeps the ids as UTF-8
in one ``bytearray`` and an open-addressing index in an ``array`` (~36 bytes a subject for
12-character ids). Ids are compared byte for byte, never trusted to a hash alone, so two
subjects can never share a row. A small dict in front keeps recently asked ids one lookup away.
"""

from __future__ import annotations

from array import array

FRONT_CACHE = 32_768

_ROW_SHIFT = 32
_LOW = (1 << _ROW_SHIFT) - 1


class SubjectTable:
    def __init__(self, capacity: int = 1024, front_cache: int = FRONT_CACHE) -> None:
        size = 8
        while size < capacity * 2:
            size *= 2
        self._ids = bytearray()
        # 4 bytes an offset until the ids pass 4 GiB, then 8.
        self._offsets = array("I", [0])
        # Each slot: row << 32 | the low 32 bits of the id's hash; -1 when empty.
        # (slots, mask) swapped as one reference, so a reader never pairs a new array with an
        # old mask while another thread grows the table.
        self._index = (array("q", [-1]) * size, size - 1)
        # Recently found ids -> rows; readers may consult it directly before calling find().
        self.front: dict[str, int] = {}
        self.front_size = front_cache
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def find(self, subject: str) -> int:
        """The subject's row, or -1. Callers on the hot path look in ``front`` first."""
        h = hash(subject)
        slots, mask = self._index
        i = h & mask
        entry = slots[i]
        if entry >= 0 and not (entry ^ h) & _LOW:
            # The first slot holds an id with the same hash bits (nearly always the one).
            row = entry >> _ROW_SHIFT
            offsets = self._offsets
            start = offsets[row]
            encoded = subject.encode()
            if offsets[row + 1] - start != len(encoded) or not self._ids.startswith(encoded, start):
                row = self._probe(subject, h)[0]
        elif entry < 0:
            return -1
        else:
            row = self._probe(subject, h)[0]
        if row >= 0:
            front = self.front
            if len(front) >= self.front_size:
                front.clear()
            front[subject] = row
        return row

    def add(self, subject: str) -> int:
        """The subject's row, created when missing. One writer at a time (the caller locks);
        readers may run concurrently."""
        h = hash(subject)
        row, slot = self._probe(subject, h)
        if row >= 0:
            return row
        row = self._count
        encoded = subject.encode()
        self._ids += encoded
        if len(self._ids) > 0xFFFFFFFF and self._offsets.typecode == "I":
            self._offsets = array("Q", self._offsets)
        self._offsets.append(len(self._ids))
        slots = self._index[0]
        slots[slot] = row << _ROW_SHIFT | (h & _LOW)
        self._count += 1
        if self._count * 4 > len(slots) * 3:
            self._grow()
        return row

    def subject(self, row: int) -> str:
        return self._ids[self._offsets[row] : self._offsets[row + 1]].decode()

    def _probe(self, subject: str, h: int) -> tuple[int, int]:
        """(row, slot) when found, else (-1, the empty slot where it would go)."""
        slots, mask = self._index
        low = h & _LOW
        i = h & mask
        encoded: bytes | None = None
        while True:
            entry = slots[i]
            if entry < 0:
                return -1, i
            if entry & _LOW == low:
                row = entry >> _ROW_SHIFT
                if encoded is None:
                    encoded = subject.encode()
                start = self._offsets[row]
                if self._offsets[row + 1] - start == len(encoded) and self._ids.startswith(
                    encoded, start
                ):
                    return row, i
            i = (i + 1) & mask

    def _grow(self) -> None:
        old = self._index[0]
        size = len(old) * 2
        slots = array("q", [-1]) * size
        mask = size - 1
        for entry in old:
            if entry < 0:
                continue
            row = entry >> _ROW_SHIFT
            i = hash(self.subject(row)) & mask
            while slots[i] >= 0:
                i = (i + 1) & mask
            slots[i] = entry
        self._index = (slots, mask)
