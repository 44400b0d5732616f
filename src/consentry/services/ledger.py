"""Verifying the ledger: every chain, the projection, and the signed checkpoints.

One pass in reference order over the subjects, the events, the projection (``permission_states``)
and the heads the newest two checkpoints recorded: each chain must link (seq, prev_hash, hash),
end at its recorded head, hold every head a checkpoint recorded for it (same hash at that seq),
and replay to exactly the projection rows of its subject. The checkpoint log itself must verify
(signatures, each line chained to the one before, heads matching the signed root, N a consistent
extension of N-1) and agree with a published copy when one is given. The first problem found
is reported, naming the subject (by id, or by reference once erased), the checkpoint or the line.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consentry.domain import merkle
from consentry.domain.events import GENESIS, ChainBreak, EventKind
from consentry.services import _ledger_rows as rw
from consentry.services import checkpoints as cps
from consentry.storage import checkpoints as rows
from consentry.storage import pseudonyms
from consentry.storage.database import Database

T = TypeVar("T")
_CHOICES = {EventKind.PERMISSION_GRANTED.value, EventKind.PERMISSION_DENIED.value}


@dataclass(frozen=True, slots=True)
class VerifyResult:
    subjects: int
    events: int
    broken: ChainBreak | None
    checkpoint: int | None = None  # the newest checkpoint the chains were checked against


class _Peek(Generic[T]):
    def __init__(self, items: Iterator[T]) -> None:
        self._items = items
        self.head: T | None = next(items, None)

    def pop(self) -> T:
        item = self.head
        assert item is not None
        self.head = next(self._items, None)
        return item


def _problem(place: str, problem: str, seq: int = 0, event_id: str = "") -> VerifyResult:
    return VerifyResult(0, 0, ChainBreak(place, seq, event_id, problem))


@dataclass(frozen=True, slots=True)
class _Pins:
    number: int
    leaves: Sequence[cps.Leaf]


def _check_log(
    conn: Any,
    keys: Mapping[str, Ed25519PublicKey] | None,
    published: Sequence[str] | None,
) -> VerifyResult | list[_Pins]:
    """The checkpoint log (and its published copy); the heads to hold the chains to."""
    log = rows.all_checkpoints(conn)
    if not log and not published:
        return []
    if keys is None:
        return _problem("checkpoints", "no receipt key is configured to check their signatures")
    previous: str | None = None
    for expected, row in enumerate(log, start=1):
        place = f"checkpoint {row.number}"
        if row.number != expected:
            return _problem(place, f"checkpoint {expected} is missing from the database")
        try:
            statement = cps.read_line(row.body, keys, previous)
        except cps.CheckpointInvalid as exc:
            return _problem(place, str(exc))
        if (statement["number"], statement["root"], statement["tree_size"]) != (
            row.number,
            row.root,
            row.tree_size,
        ):
            return _problem(place, "its row differs from its signed statement")
        previous = row.body
    previous = None
    for at, line in enumerate(published or (), start=1):
        place = f"published checkpoint line {at}"
        try:
            number = int(cps.read_line(line, keys, previous)["number"])
        except (cps.CheckpointInvalid, ValueError, TypeError) as exc:
            return _problem(place, str(exc))
        if number > len(log):
            return _problem(
                place,
                f"checkpoint {number} is published but not in the database "
                f"(it ends at {len(log)}: rolled back)",
            )
        if log[number - 1].body != line:
            return _problem(place, f"checkpoint {number} differs from the database's")
        previous = line
    pins: list[_Pins] = []
    for row in log[-2:]:
        blob = rows.leaves_of(conn, row.number)
        if blob is None:
            if row is log[-1]:
                return _problem(f"checkpoint {row.number}", "its recorded heads are missing")
            continue
        size = len(blob) // cps.LEAF.size
        if size != row.tree_size or merkle.root(cps.leaf_hashes(blob)).hex() != row.root:
            return _problem(f"checkpoint {row.number}", "its recorded heads do not match its root")
        pins.append(_Pins(row.number, cps.unpack(blob)))
    if len(pins) == 2:
        broken = _consistent(pins[0], pins[1])
        if broken is not None:
            return broken
    return pins


def _consistent(older: _Pins, newer: _Pins) -> VerifyResult | None:
    """Checkpoint ``newer`` extends ``older``: every chain head ``older`` recorded is in it, at
    the same or a later seq (the same hash when the seq is the same)."""
    later = {leaf.ref: leaf for leaf in newer.leaves}
    for leaf in older.leaves:
        found = later.get(leaf.ref)
        place = f"checkpoint {newer.number}"
        if found is None:
            return _problem(place, f"drops chain ref:{leaf.ref} of checkpoint {older.number}")
        if found.seq < leaf.seq or (found.seq == leaf.seq and found.hash != leaf.hash):
            return _problem(
                place,
                f"is not an extension of checkpoint {older.number}: chain ref:{leaf.ref} "
                f"went from seq {leaf.seq} to {found.seq}",
            )
    return None


def _merged_pins(
    pins: Sequence[_Pins], only: str | None
) -> Iterator[tuple[str, list[tuple[int, int, str]]]]:
    """(ref, [(checkpoint, seq, hash)…]) for each recorded chain (or chain ``only``), by
    reference: the checkpoints' heads, each list already in that order, merged."""
    streams = [
        ((leaf.ref, p.number, leaf.seq, leaf.hash) for leaf in p.leaves if only in (None, leaf.ref))
        for p in pins
    ]
    group: list[tuple[int, int, str]] = []
    current: str | None = None
    for ref, number, seq, digest in heapq.merge(*streams):
        if ref != current:
            if current is not None:
                yield current, group
            current, group = ref, []
        group.append((number, seq, digest))
    if current is not None:
        yield current, group


def verify(
    db: Database,
    subject_id: str | None = None,
    *,
    keys: Mapping[str, Ed25519PublicKey] | None = None,
    published: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    ref: str | None = None,
) -> VerifyResult:
    """Check the ledger (or one subject's chain): see the module docstring. ``keys``: the
    receipt keys that sign checkpoints; ``published``: the lines of an off-site copy."""
    with db.read() as conn:
        if subject_id is not None:
            ref = pseudonyms.resolve(conn, subject_id)
            if ref is None:
                return VerifyResult(0, 0, None)
        checked = _check_log(conn, keys, published)
        if isinstance(checked, VerifyResult):
            return checked
        newest = checked[-1].number if checked else None
        pins = _Peek(_merged_pins(checked, ref))
        streams = [
            rows.subject_rows(conn, ref),
            rows.all_events(conn, ref),
            rows.projection_rows(conn, subject_id)
            if subject_id is not None or ref is None
            else rows.projection_rows(conn, rows.subject_of(conn, ref) or ""),
        ]
        try:
            subjects, events, projection = (_Peek(s) for s in streams)
            result = _walk(subjects, events, projection, pins, progress)
        finally:
            for stream in streams:
                stream.close()
    return VerifyResult(result.subjects, result.events, result.broken, newest)


def _walk(
    subjects: _Peek[Any],
    events: _Peek[Any],
    projection: _Peek[Any],
    pins: _Peek[tuple[str, list[tuple[int, int, str]]]],
    progress: Callable[[int, int], None] | None,
) -> VerifyResult:
    count_subjects = count_events = 0

    def broken(place: str, problem: str, seq: int = 0, event_id: str = "") -> VerifyResult:
        return VerifyResult(count_subjects, count_events, ChainBreak(place, seq, event_id, problem))

    def orphaned(event: Any) -> VerifyResult:
        return broken(
            f"ref:{event[rw.REF]}",
            "events without a subject row (the subject row was deleted)",
            event[rw.SEQ],
            event[rw.EVENT_ID],
        )

    while subjects.head is not None:
        ref, subject_id, head_seq, head_hash = subjects.pop()
        name = subject_id or f"ref:{ref}"
        count_subjects += 1
        while events.head is not None and events.head[rw.REF] < ref:
            return orphaned(events.pop())
        recorded: dict[int, tuple[int, str]] = {}
        while pins.head is not None and pins.head[0] <= ref:
            pinned_ref, heads = pins.pop()
            if pinned_ref < ref:
                return broken(
                    f"ref:{pinned_ref}",
                    f"chain recorded in checkpoint {heads[-1][0]} is missing "
                    "(its subject row was deleted)",
                )
            recorded = {seq: (number, h) for number, seq, h in heads}
        prev, seq, last = GENESIS, 0, {}
        while events.head is not None and events.head[rw.REF] == ref:
            row = events.pop()
            count_events += 1
            seq += 1
            at, event_id = row[rw.SEQ], row[rw.EVENT_ID]
            if at != seq:
                return broken(name, "sequence gap", at, event_id)
            if row[rw.PREV] != prev:
                return broken(name, "prev_hash mismatch", at, event_id)
            if not rw.hash_ok(row):
                return broken(name, "hash mismatch", at, event_id)
            pinned = recorded.get(at)
            if pinned is not None and pinned[1] != row[rw.HASH]:
                return broken(
                    name,
                    f"differs from checkpoint {pinned[0]} (the chain was rewritten)",
                    at,
                    event_id,
                )
            prev = row[rw.HASH]
            if row[rw.KIND] in _CHOICES:
                last[row[rw.PERMISSION]] = row
        if prev != head_hash or seq != head_seq:
            return broken(name, "chain ends before the recorded head (events removed)", seq + 1)
        beyond = [s for s in recorded if s > seq]
        if beyond:
            number = recorded[max(beyond)][0]
            return broken(
                name,
                f"chain ends at seq {seq}, before the head checkpoint {number} recorded at seq "
                f"{max(beyond)} (events removed and the head moved back)",
                seq + 1,
            )
        found = _projection_of(projection, ref)
        if found is not None:
            return broken(found, "projection rows of a subject with no live chain")
        wrong = _compare(projection, ref, last, name)
        if wrong is not None:
            return broken(name, wrong)
        if progress is not None and count_subjects % 10_000 == 0:
            progress(count_subjects, count_events)
    if events.head is not None:
        return orphaned(events.pop())
    if pins.head is not None:
        pinned_ref, heads = pins.pop()
        return broken(
            f"ref:{pinned_ref}",
            f"chain recorded in checkpoint {heads[-1][0]} is missing (its subject row was deleted)",
        )
    while projection.head is not None:
        row = projection.pop()
        return broken(str(row[rw.P_SUBJECT]), "projection rows of a subject with no live chain")
    return VerifyResult(count_subjects, count_events, None)


def _projection_of(projection: _Peek[Any], ref: str) -> str | None:
    """The subject id of a row before ``ref`` or with no chain at all (a forged row), if any."""
    head = projection.head
    if head is not None and (head[rw.P_REF] is None or head[rw.P_REF] < ref):
        return str(projection.pop()[rw.P_SUBJECT])
    return None


def _compare(projection: _Peek[Any], ref: str, last: dict[str, Any], name: str) -> str | None:
    """The projection rows of chain ``ref`` against its replay: one row per permission the
    chain chose on, equal to the last such event."""
    seen: set[str] = set()
    while projection.head is not None and projection.head[rw.P_REF] == ref:
        row = projection.pop()
        pid = row[rw.P_PERMISSION]
        event = last.get(pid)
        seen.add(pid)
        if event is None:
            return f"projection row {pid!r} has no event in the chain"
        if (row[rw.P_STATE], row[rw.P_VERSION], row[rw.P_EVENT]) != (
            event[rw.STATE],
            event[rw.VERSION],
            event[rw.EVENT_ID],
        ) or rw.moment(row[rw.P_EXPIRES]) != rw.moment(event[rw.EXPIRES]):
            return (
                f"projection row {pid!r} says {row[rw.P_STATE]!r}, the chain "
                f"{event[rw.STATE]!r} (event seq {event[rw.SEQ]}): the projection was edited"
            )
    missing = sorted(set(last) - seen)
    if missing and name and not name.startswith("ref:"):
        return f"projection rows missing for {', '.join(missing)}"
    return None
