"""The hash chain: verification finds edits, gaps, reordering and a cut tail."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from consentry.domain.events import GENESIS, Event, EventKind, recompute, seal, verify_chain

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def chain(n: int) -> list[Event]:
    events: list[Event] = []
    prev = GENESIS
    for i in range(1, n + 1):
        granted = i % 2 == 1
        event = seal(
            event_id=f"e{i}",
            subject_ref="s1",
            seq=i,
            kind=EventKind.PERMISSION_GRANTED if granted else EventKind.PERMISSION_DENIED,
            permission_id="recs",
            state="granted" if granted else "denied",
            notice_version="2",
            source="web",
            occurred_at=T0 + timedelta(seconds=i),
            prev_hash=prev,
            options={"device": "phone"},
            locale="fr",
        )
        events.append(event)
        prev = event.hash
    return events


def test_intact_chain_verifies() -> None:
    events = chain(5)
    assert verify_chain(events, events[-1].hash) is None


def test_changed_state_breaks_the_chain_at_that_event() -> None:
    events = chain(5)
    events[2] = replace(events[2], state="granted" if events[2].state == "denied" else "denied")
    broken = verify_chain(events)
    assert broken is not None and broken.seq == 3 and broken.problem == "hash mismatch"


def test_changed_time_or_options_break_the_chain() -> None:
    for field, value in (("occurred_at", T0), ("options", {}), ("notice_version", "1")):
        events = chain(3)
        events[1] = replace(events[1], **{field: value})  # type: ignore[arg-type]
        broken = verify_chain(events)
        assert broken is not None and broken.seq == 2, field


def test_removed_middle_event_is_a_sequence_gap() -> None:
    events = chain(5)
    del events[2]
    broken = verify_chain(events)
    assert broken is not None and broken.seq == 4 and broken.problem == "sequence gap"


def test_rehashed_event_does_not_fit_its_successor() -> None:
    events = chain(4)
    forged = seal(
        event_id="e2",
        subject_ref="s1",
        seq=2,
        kind=EventKind.PERMISSION_GRANTED,
        permission_id="recs",
        state="granted",
        notice_version="2",
        source="web",
        occurred_at=events[1].occurred_at,
        prev_hash=events[0].hash,
    )
    events[1] = forged
    broken = verify_chain(events)
    assert broken is not None and broken.seq == 3 and broken.problem == "prev_hash mismatch"


def test_cut_tail_is_caught_by_the_recorded_head() -> None:
    events = chain(5)
    head = events[-1].hash
    broken = verify_chain(events[:-2], head)
    assert broken is not None and "removed" in broken.problem
    assert verify_chain(events[:-2]) is None  # without the head, a cut tail looks complete


def test_a_sealed_event_holds_each_field_as_given_and_its_hash_recomputes() -> None:
    given = {
        "event_id": "e1",
        "subject_ref": "s1",
        "seq": 4,
        "kind": EventKind.PERMISSION_DENIED,
        "permission_id": "recs",
        "state": "denied",
        "notice_version": "2",
        "source": "web",
        "occurred_at": T0,
        "prev_hash": "a" * 64,
        "options": {"device": "phone"},
        "locale": "fr",
        "channel": "app",
        "expires_at": T0 + timedelta(days=30),
    }
    event = seal(**given)  # type: ignore[arg-type]
    assert {name: getattr(event, name) for name in given} == given
    assert event.hash == recompute(event)
