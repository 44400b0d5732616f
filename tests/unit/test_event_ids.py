"""Event ids: time-ordered UUIDs, so the ledger's id indexes grow at their end."""

from __future__ import annotations

import time
import uuid

from consentry.domain.events import new_event_id


def test_a_new_event_id_is_a_version_7_uuid_holding_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid.UUID(new_event_id())
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after


def test_ids_made_in_later_milliseconds_sort_after_earlier_ones() -> None:
    made = []
    for _ in range(5):
        made.append(new_event_id())
        time.sleep(0.002)
    assert made == sorted(made)


def test_ids_made_in_the_same_millisecond_differ() -> None:
    assert len({new_event_id() for _ in range(10_000)}) == 10_000
