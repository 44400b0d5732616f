"""Shards: stable, and the same for every event of a subject, erasure included."""

from __future__ import annotations

import secrets

from consentry.domain.messages import JurisdictionSet, PermissionChanged, SubjectErased
from consentry.events.publisher import shard_of
from consentry.storage.outbox import subject_key


def test_a_shard_is_stable_and_within_range() -> None:
    key = secrets.token_hex(32)
    assert shard_of(key, 16) == shard_of(key, 16)
    assert {shard_of(secrets.token_hex(32), 16) for _ in range(500)} == set(range(16))


def test_a_subjects_events_and_its_erasure_share_one_key() -> None:
    ref = secrets.token_hex(32)
    change = PermissionChanged("cust-1", 3, "permission_denied", "recs", "denied", "1", ref)
    assert subject_key("cust-1", change) == ref
    moved = JurisdictionSet("cust-1", "BE", ref)
    assert subject_key("cust-1", moved) == ref
    assert subject_key(ref, SubjectErased(ref, 4)) == ref
