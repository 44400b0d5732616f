"""Subject rows: each subject id -> (packed state, last applied seq), for the replica.

Two implementations answer the same methods:

- ``_rows.Rows`` (C, built with the package when a compiler is there): one record per subject
  in an arena and an open-addressing index, so ``lookup`` costs one call and about two memory
  reads at a million subjects;
- :class:`PyRows` (pure Python): a :class:`SubjectTable` beside a list of states and an
  ``array`` of seqs, subjects with the same state sharing one int. Always available;
  ``CONSENTRY_PURE_PYTHON=1`` selects it.

A row is an opaque int handle given by ``find`` / ``add``; -1 means absent.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from consentry.replica.table import SubjectTable


class Rows(Protocol):
    def __len__(self) -> int: ...
    def lookup(self, subject: str, default: int, /) -> int: ...
    def find(self, subject: str, /) -> int: ...
    def add(self, subject: str, state: int, seq: int, /) -> int: ...
    def state(self, row: int, /) -> int: ...
    def seq(self, row: int, /) -> int: ...
    def set(self, row: int, state: int, seq: int, /) -> None: ...
    def subject(self, row: int, /) -> str: ...
    def next_row(self, row: int, /) -> int: ...


# Distinct states the pure-Python rows share between subjects (one int each).
POOL_SIZE = 65_536


class PyRows:
    """The pure-Python rows (see the module docstring)."""

    def __init__(self, capacity: int = 1024, bits: int = 64) -> None:
        # ``bits``, the width of the states, matters only to the compiled rows.
        self._table = SubjectTable(capacity)
        self._front = self._table.front
        self._states: list[int] = []
        self._seqs = array("I")
        # Many subjects share a state ("accept all", "refuse all"): one int for each.
        self.pool: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._table)

    def lookup(self, subject: str, default: int, /) -> int:
        row = self._front.get(subject)
        if row is None:
            row = self._table.find(subject)
            if row < 0:
                return default
        return self._states[row]

    def find(self, subject: str, /) -> int:
        return self._table.find(subject)

    def add(self, subject: str, state: int, seq: int, /) -> int:
        row = self._table.find(subject)
        if row >= 0:
            self.set(row, state, seq)
            return row
        # The row's data first, then the id: a reader that finds the id finds its data.
        self._states.append(self._pooled(state))
        self._seqs.append(seq)
        return self._table.add(subject)

    def state(self, row: int, /) -> int:
        return self._states[row]

    def seq(self, row: int, /) -> int:
        return self._seqs[row]

    def set(self, row: int, state: int, seq: int, /) -> None:
        self._seqs[row] = seq
        self._states[row] = self._pooled(state)

    def _pooled(self, state: int) -> int:
        pooled = self.pool.get(state)
        if pooled is None:
            if len(self.pool) < POOL_SIZE:
                self.pool[state] = state
            pooled = state
        return pooled

    def subject(self, row: int, /) -> str:
        return self._table.subject(row)

    def next_row(self, row: int, /) -> int:
        following = row + 1
        return following if following < len(self._table) else -1


class AllowsFunc(Protocol):
    def __call__(
        self,
        subject: str,
        purpose: str,
        categories: Sequence[str] | str,
        recipient: str | None = None,
        /,
    ) -> bool: ...


class Checker(Protocol):
    """The compiled ``Replica.allows`` (see ``_rows.c``): the common request answered in C
    from the compiled plan and the verdict table, every other one handed to ``fallback``."""

    fresh_until: float
    allows: AllowsFunc


RowsFactory = Callable[[int, int], Rows]  # (capacity, bits of a state) -> rows


def _compiled() -> tuple[RowsFactory, Callable[..., Checker]] | None:
    if os.environ.get("CONSENTRY_PURE_PYTHON"):
        return None
    try:
        from consentry.replica import _rows  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _rows.Rows, _rows.Checker


_BUILT = _compiled()
COMPILED: RowsFactory | None = _BUILT[0] if _BUILT else None


def fast_checker(rows: Rows, **tables: Any) -> Checker | None:
    """The compiled fast path over compiled ``rows``; None over the pure-Python ones."""
    if _BUILT is None or isinstance(rows, PyRows):
        return None
    return _BUILT[1](rows, **tables)


def new_rows(capacity: int = 1024, bits: int = 64, *, compiled: bool | None = None) -> Rows:
    """Rows for ``capacity`` subjects whose states are below ``2**bits``: the compiled ones
    when built (``compiled=None``), else the pure-Python ones. ``compiled=True`` insists
    (ImportError when not built)."""
    if compiled is None:
        compiled = COMPILED is not None
    if not compiled:
        return PyRows(capacity)
    if COMPILED is None:
        raise ImportError("consentry.replica._rows is not built (no C compiler at install?)")
    return COMPILED(capacity, bits)


def rows_iter(rows: Rows) -> Iterator[int]:
    """Every row, in insertion order."""
    row = rows.next_row(-1)
    while row >= 0:
        yield row
        row = rows.next_row(row)
