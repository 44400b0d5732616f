"""Imported records: checks against the catalogue, stable event ids, and the bulk path's
hashes and outbox payloads equal to the ones the live path computes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consentry import crypto
from consentry.domain.catalogue import Catalogue
from consentry.domain.events import GENESIS, EventKind, recompute, seal
from consentry.domain.imports import (
    Checker,
    InvalidRecord,
    event_id_of,
    hash_of,
    iso_of_z,
    iso_z,
    parts_of,
    payload_of,
    subject_json,
)
from consentry.domain.messages import dumps, encode
from consentry.storage.changes import outbox_message

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def checker(mini_catalogue: Catalogue) -> Checker:
    return Checker({p.id: p for p in mini_catalogue.permissions}, NOW, "legacy")


def good(**extra: object) -> dict[str, object]:
    return {
        "subject": "cust-1",
        "permission": "recs",
        "state": "granted",
        "time": "2025-03-01T10:00:00Z",
        "notice_version": "2",
        **extra,
    }


def test_a_good_record_is_read_with_its_fields(checker: Checker) -> None:
    record = checker.check(good(locale="fr", options={"size": "all"}, record_id="r-1"), 7)
    assert record.time == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert (record.locale, record.source, record.record_id, record.line) == (
        "fr",
        "legacy",
        "r-1",
        7,
    )
    assert record.options == {"size": "all"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"permission": "nope"}, "unknown permission 'nope'"),
        ({"notice_version": "9"}, "notice version '9', which the catalogue does not know"),
        ({"time": "2027-01-01T00:00:00Z"}, "is in the future"),
        ({"time": "2025-03-01T10:00:00"}, "has no UTC offset"),
        ({"time": "yesterday"}, "is not an ISO 8601"),
        ({"state": "maybe"}, "is not granted or denied"),
        ({"subject": ""}, "subject is missing"),
        ({"permission": "orders"}, "is not a choice"),
        ({"options": "[1]"}, "options must be an object"),
        ({"source": "Big Platform"}, "source 'Big Platform' must be"),
    ],
)
def test_a_bad_record_says_why(checker: Checker, change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRecord, match=message.replace("(", r"\(")):
        checker.check(good(**change))


def test_a_refusal_on_an_unknown_notice_version_is_kept(checker: Checker) -> None:
    record = checker.check(good(state="denied", notice_version="0.9"))
    assert record.notice_version == "0.9"


def test_a_kept_earlier_notice_version_is_known(checker: Checker) -> None:
    assert checker.check(good(notice_version="1")).notice_version == "1"


def test_the_event_id_follows_the_record_id_or_else_the_content(checker: Checker) -> None:
    a = checker.check(good(record_id="r-1"))
    b = checker.check(good(record_id="r-1", state="denied"))
    assert a.event_id == b.event_id  # the platform's id names the record
    c, d = checker.check(good()), checker.check(good())
    assert c.event_id == d.event_id != a.event_id
    assert checker.check(good(locale="fr")).event_id != c.event_id
    assert len(c.event_id) == 36 and c.event_id[14] == "5"


@pytest.mark.parametrize(
    ("version", "locale", "options"),
    [
        ("2", "fr", {}),
        ('v"2\\tab\n', None, {}),
        ("é-1", "nl", {"size": "ünïcode", "n": 3}),
    ],
)
def test_the_fast_hash_and_payload_equal_the_live_paths(
    version: str, locale: str | None, options: dict[str, object]
) -> None:
    moment = datetime(2025, 3, 1, 10, 0, 0, 1234 if options else 0, tzinfo=UTC)
    ref = "5e" * 32  # a chain reference: 64 hex digits
    event_id = event_id_of("cust-é", "recs", "granted", moment, version, locale, "x", options, None)
    key = crypto.new_key()
    stored = crypto.seal_options(key, options, event_id.encode()) if options else {}
    event = seal(
        event_id=event_id,
        subject_ref=ref,
        seq=4,
        kind=EventKind.PERMISSION_GRANTED,
        permission_id="recs",
        state="granted",
        notice_version=version,
        source="import:x",
        occurred_at=moment,
        prev_hash=GENESIS,
        options=stored,
        locale=locale,
    )
    parts = parts_of("recs", "granted", version, locale, "x")
    fast = hash_of(parts, event_id, iso_z(moment), dumps(stored), GENESIS, 4, ref)
    assert fast == event.hash == recompute(event)
    named = subject_json("cust-é")
    payload = payload_of(parts, event_id, iso_of_z(iso_z(moment)), 4, named, ref)
    assert payload == encode(outbox_message("cust-é", event))


def test_times_in_another_zone_are_kept_in_utc(checker: Checker) -> None:
    record = checker.check(good(time="2025-03-01T12:00:00+02:00"))
    assert record.time == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert record.time.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2025-03-01T10:00:00Z",
        "2025-03-01T10:00:00+00:00",
        "2025-03-01T10:00:00.250000Z",
        "2025-03-01T12:00:00+02:00",
        "2025-03-01 10:00:00Z",
        "2025-03-01T10:00Z",
    ],
)
def test_a_record_carries_its_time_as_the_ledger_writes_it(checker: Checker, text: str) -> None:
    record = checker.check(good(time=text))
    assert record.z == iso_z(record.time)
