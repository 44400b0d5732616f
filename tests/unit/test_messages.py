"""The change messages: one encoding for every writer, one decoding for every reader."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from consentry.domain.events import GENESIS, Event, EventKind
from consentry.domain.messages import (
    JurisdictionSet,
    MalformedMessage,
    Message,
    OtherChange,
    PermissionChanged,
    Redacted,
    SubjectErased,
    decode,
    encode,
)
from consentry.storage.changes import outbox_message

REF = "ab" * 32
MOMENT = datetime(2026, 11, 29, 10, 0, 0, 123456, tzinfo=UTC)

MESSAGES: list[Message] = [
    PermissionChanged(
        subject="cust-é",
        seq=3,
        kind="permission_granted",
        permission="recs",
        state="granted",
        notice_version="2",
        subject_ref=REF,
        event_id="e-1",
        source="api",
        occurred_at=MOMENT.isoformat(),
        expires_at=MOMENT.isoformat(),
    ),
    PermissionChanged("cust-1", 4, "permission_denied", "ads", "denied", "3", REF, "e-2", "gpc"),
    JurisdictionSet("cust-1", "US-CA", REF),
    JurisdictionSet("cust-1", None, REF),
    SubjectErased(REF, 5, "e-3", "api", MOMENT.isoformat()),
    Redacted(REF),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_reads_back_as_written(message: Message) -> None:
    assert decode(encode(message)) == message
    assert decode(encode(message).encode()) == message
    assert decode(json.loads(encode(message))) == message


def test_the_stored_text_is_the_one_written_before_messages_were_typed() -> None:
    """The exact bytes of each kind, as rows already in outboxes hold them."""
    assert encode(MESSAGES[1]) == (
        '{"event_id":"e-2","expires_at":null,"kind":"permission_denied","notice_version":"3",'
        '"occurred_at":null,"permission":"ads","seq":4,"source":"gpc","state":"denied",'
        f'"subject":"cust-1","subject_ref":"{REF}"}}'
    )
    assert encode(MESSAGES[2]) == (
        f'{{"jurisdiction":"US-CA","kind":"jurisdiction_set","subject":"cust-1","subject_ref":"{REF}"}}'
    )
    assert encode(MESSAGES[4]) == (
        f'{{"event_id":"e-3","kind":"subject_erased","occurred_at":"{MOMENT.isoformat()}",'
        f'"seq":5,"source":"api","subject_ref":"{REF}"}}'
    )
    assert encode(MESSAGES[5]) == f'{{"kind":"redacted","subject_ref":"{REF}"}}'
    assert '"cust-é"' in encode(MESSAGES[0])  # UTF-8 as is, not escaped


def test_an_event_becomes_the_message_of_its_kind() -> None:
    event = Event(
        event_id="e-9",
        subject_ref=REF,
        seq=1,
        kind=EventKind.PERMISSION_GRANTED,
        permission_id="recs",
        state="granted",
        notice_version="2",
        source="page",
        occurred_at=MOMENT,
        prev_hash=GENESIS,
        hash="0" * 64,
    )
    message = outbox_message("cust-1", event)
    assert decode(encode(message)) == message
    assert message.occurred_at == MOMENT.isoformat() and message.expires_at is None


def test_rows_written_before_a_field_existed_still_read() -> None:
    old = {"subject": "s1", "seq": 1, "kind": "permission_granted", "permission": "recs"}
    read = decode({**old, "state": "granted", "notice_version": "1"})
    assert isinstance(read, PermissionChanged) and read.subject_ref is None
    moved = decode({"kind": "jurisdiction_set", "subject": "s1", "jurisdiction": "BE"})
    assert moved == JurisdictionSet("s1", "BE")
    erased = decode({"kind": "subject_erased", "subject": "s1", "seq": 2})
    assert isinstance(erased, SubjectErased) and erased.subject == "s1"
    assert decode(encode(erased)) == erased


def test_a_kind_from_a_newer_server_reads_whole() -> None:
    fields = {"kind": "notice_seen", "subject": "s1", "seq": 7, "extra": [1]}
    other = decode(fields)
    assert other == OtherChange("notice_seen", "s1", 7, None, fields)
    assert json.loads(encode(other)) == fields


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        b"\xff",
        "[1, 2]",
        "null",
        {"subject": "s1", "seq": 1},  # no kind
        {"kind": 3},
        {"kind": "permission_granted", "seq": 1, "permission": "recs", "state": "granted"},
        {
            "kind": "permission_denied",
            "subject": "s1",
            "seq": "x",
            "permission": "recs",
            "state": "denied",
            "notice_version": "1",
        },
        {
            "kind": "permission_denied",
            "subject": "s1",
            "seq": True,
            "permission": "recs",
            "state": "denied",
            "notice_version": "1",
        },
        {"kind": "jurisdiction_set", "jurisdiction": "BE"},
        {"kind": "jurisdiction_set", "subject": "s1", "jurisdiction": 4},
        {"kind": "subject_erased", "seq": 2},
        {"kind": "subject_erased", "subject_ref": REF},
        {"kind": "redacted", "subject_ref": 5},
        {"kind": "notice_seen", "subject": "s1"},
    ],
)
def test_what_no_reader_can_use_is_malformed(data: Any) -> None:
    with pytest.raises(MalformedMessage):
        decode(data)


def test_a_grant_reads_the_same_in_the_servers_form_and_in_any_other() -> None:
    written = json.loads(encode(MESSAGES[0]))
    assert decode({**written, "seq": "3"}) == decode(written) == MESSAGES[0]
    partial = {k: v for k, v in written.items() if k not in ("source", "expires_at")}
    grant = MESSAGES[0]
    assert isinstance(grant, PermissionChanged)
    assert decode(partial) == dataclasses.replace(grant, source=None, expires_at=None)
