"""Ledger events and their hash chain.

Each subject has one chain: event ``seq`` n carries the hash of event n-1 (``GENESIS`` for the
first). The hash covers every stored field, so changing any of them, or removing an event in the
middle, breaks the chain at that point.

The ledger names a subject by a pseudonymous reference, never by the platform's subject id, so
erasing a subject (removing the id and everything keyed by it) keeps the chain verifiable. The
reference is random, drawn when the chain starts (``storage/pseudonyms.py``): nothing computed
from the id finds it once erasure has removed the one row that links the two.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any

from consentry.domain.state import Choice, ChoiceState

GENESIS = "0" * 64


def new_event_id() -> str:
    """A new event's id: a time-ordered UUID (version 7, RFC 9562: the Unix time in
    milliseconds, then 74 random bits). Ids made later sort later, so each new event lands at
    the end of the events' and the outbox's id indexes, not on a random page of them (SQLite,
    a ledger of 120,000 events: 1,970-2,510 -> 3,110-3,540 changes/s, docs/benchmarks.md)."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits: 12 for rand_a, 62 for rand_b
    value = (
        (millis & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | (rand >> 68) << 64
        | 0b10 << 62
        | rand & ((1 << 62) - 1)
    )
    return str(uuid.UUID(int=value))


class EventKind(StrEnum):
    PERMISSION_GRANTED = "permission_granted"
    PERMISSION_DENIED = "permission_denied"
    # The subject exercised erasure: the last event of a chain, with no permission.
    SUBJECT_ERASED = "subject_erased"


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    subject_ref: str
    seq: int
    kind: EventKind
    permission_id: str
    state: str
    notice_version: str
    source: str
    occurred_at: datetime
    prev_hash: str
    hash: str
    options: Mapping[str, Any] = field(default_factory=dict)
    locale: str | None = None
    channel: str | None = None
    expires_at: datetime | None = None


# Every field of an event, in declaration order (the ``events`` table has one column each).
EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Event))


def event_fields(event: Event) -> dict[str, Any]:
    """Every field of an event by name, as plain values (a kind's text, options as a dict)."""
    values = {name: getattr(event, name) for name in EVENT_FIELDS}
    values["kind"] = event.kind.value
    values["options"] = dict(event.options)
    return values


def choice_left(event: Event, options: Mapping[str, Any] | None = None) -> Choice:
    """The choice an event leaves on its permission. ``options``: the plain ones (a stored
    event's may be sealed); none when not asked for."""
    return Choice(
        permission_id=event.permission_id,
        state=ChoiceState(event.state),
        notice_version=event.notice_version,
        updated_at=event.occurred_at,
        source=event.source,
        options=dict(options or {}),
        expires_at=event.expires_at,
        event_id=event.event_id,
    )


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# The fields the hash covers (every one but the hash itself), in declaration order.
_HASHED: tuple[str, ...] = tuple(name for name in EVENT_FIELDS if name != "hash")
_hashed_values = attrgetter(*_HASHED)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _canonical(values: tuple[Any, ...]) -> bytes:
    """The bytes the hash covers, from the values of ``_HASHED`` in order: a fixed JSON form,
    times in UTC text."""
    body = dict(zip(_HASHED, values, strict=True))
    body["kind"] = str(body["kind"])
    body["occurred_at"] = _iso(body["occurred_at"])
    body["expires_at"] = _iso(body["expires_at"])
    body["options"] = dict(body["options"])
    return _CANONICAL(body).encode()


def canonical_bytes(event: Event) -> bytes:
    """The bytes the hash covers: every field but the hash itself, in a fixed JSON form."""
    return _canonical(_hashed_values(event))


def recompute(event: Event) -> str:
    return hashlib.sha256(canonical_bytes(event)).hexdigest()


def seal(
    *,
    event_id: str,
    subject_ref: str,
    seq: int,
    kind: EventKind,
    permission_id: str,
    state: str,
    notice_version: str,
    source: str,
    occurred_at: datetime,
    prev_hash: str,
    options: Mapping[str, Any] | None = None,
    locale: str | None = None,
    channel: str | None = None,
    expires_at: datetime | None = None,
) -> Event:
    """Build an event and compute its hash from its fields and its predecessor's hash."""
    plain = dict(options or {})
    values = (event_id, subject_ref, seq, kind, permission_id, state, notice_version, source,
              occurred_at, prev_hash, plain, locale, channel, expires_at)  # fmt: skip
    return Event(*values[:10], hashlib.sha256(_canonical(values)).hexdigest(), *values[10:])


@dataclass(frozen=True, slots=True)
class ChainBreak:
    subject: str
    seq: int
    event_id: str
    problem: str


def verify_chain(events: Iterable[Event], head_hash: str | None = None) -> ChainBreak | None:
    """Check one subject's events, in ``seq`` order. Returns the first break, or None.

    ``head_hash`` is the hash the projection recorded as the latest: it catches a chain whose
    newest events were removed.
    """
    expected_prev = GENESIS
    expected_seq = 1
    last: Event | None = None
    for event in events:
        if event.seq != expected_seq:
            return ChainBreak(event.subject_ref, event.seq, event.event_id, "sequence gap")
        if event.prev_hash != expected_prev:
            return ChainBreak(event.subject_ref, event.seq, event.event_id, "prev_hash mismatch")
        if recompute(event) != event.hash:
            return ChainBreak(event.subject_ref, event.seq, event.event_id, "hash mismatch")
        expected_prev = event.hash
        expected_seq += 1
        last = event
    if head_hash is not None and expected_prev != head_hash:
        subject = last.subject_ref if last else ""
        return ChainBreak(
            subject, expected_seq, "", "chain ends before the recorded head (events removed)"
        )
    return None
