"""Shards: stable, and the same for every event of a subject, erasure included."""

from __future__ import annotations

from consentry.domain.events import subject_ref
from consentry.events.outbox import shard_of, subject_key


def test_a_shard_is_stable_and_within_range() -> None:
    key = subject_ref("cust-1")
    assert shard_of(key, 16) == shard_of(key, 16)
    assert {shard_of(subject_ref(f"cust-{i}"), 16) for i in range(500)} == set(range(16))


def test_a_subjects_events_and_its_erasure_share_one_key() -> None:
    ref = subject_ref("cust-1")
    assert subject_key("cust-1", {"subject": "cust-1", "kind": "permission_denied"}) == ref
    assert subject_key(ref, {"subject_ref": ref, "kind": "subject_erased"}) == ref
