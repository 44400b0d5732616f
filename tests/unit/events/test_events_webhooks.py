"""Webhook signing, backoff and what each relayed event owes to which recipient."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from consentry.domain.catalogue import Catalogue
from consentry.domain.messages import decode
from consentry.events.webhooks import ERASURE, OPT_OUT, backoff_delay, plan, sign, verify_signature
from consentry.storage.outbox import OutboxMessage, subject_key

REF = "c1" * 32  # the chain reference the server drew for cust-1
SECRET = "whsec-unit-" + "k" * 32
BODY = b'{"event_id":"e-1","recipient":"adnet","type":"consentry.opt_out"}'


def test_a_signature_verifies_with_the_same_secret_and_body() -> None:
    header = sign(SECRET, BODY)
    assert header.startswith("t=") and ",v1=" in header
    assert verify_signature(SECRET, header, BODY)


def test_a_changed_body_or_secret_or_mac_fails() -> None:
    header = sign(SECRET, BODY)
    assert not verify_signature(SECRET, header, BODY.replace(b"adnet", b"buyer"))
    assert not verify_signature("another-secret", header, BODY)
    t, mac = header.split(",")
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert not verify_signature(SECRET, f"{t},{flipped}", BODY)


def test_the_timestamp_is_signed_too() -> None:
    now = int(time.time())
    header = sign(SECRET, BODY, now)
    mac = header.split(",v1=")[1]
    assert not verify_signature(SECRET, f"t={now + 1},v1={mac}", BODY, now=now)


def test_a_signature_outside_the_replay_window_is_refused() -> None:
    now = 1_800_000_000
    header = sign(SECRET, BODY, now - 301)
    assert not verify_signature(SECRET, header, BODY, tolerance=300, now=now)
    assert verify_signature(SECRET, sign(SECRET, BODY, now - 299), BODY, tolerance=300, now=now)
    assert not verify_signature(SECRET, sign(SECRET, BODY, now + 301), BODY, now=now)


@pytest.mark.parametrize("header", ["", "t=1", "v1=abc", "t=x,v1=abc", "garbage"])
def test_malformed_headers_never_verify(header: str) -> None:
    assert not verify_signature(SECRET, header, BODY)


def test_any_of_several_signatures_is_accepted_for_secret_rotation() -> None:
    now = int(time.time())
    old = sign("old-secret", BODY, now).split(",v1=")[1]
    new = sign(SECRET, BODY, now).split(",v1=")[1]
    assert verify_signature(SECRET, f"t={now},v1={old},v1={new}", BODY)


def test_backoff_doubles_with_jitter_between_half_and_all_and_is_capped() -> None:
    rng = random.Random(7)
    for attempts in range(1, 8):
        full = 2.0 * 2 ** (attempts - 1)
        for _ in range(50):
            assert full / 2 <= backoff_delay(attempts, 2.0, rng) <= full
    assert backoff_delay(40, 2.0, rng, cap=60.0) <= 60.0


def _message(payload: dict[str, Any], position: int = 1) -> OutboxMessage:
    row_subject = payload.get("subject") or payload["subject_ref"]
    return OutboxMessage(
        position=position,
        event_id=payload["event_id"],
        subject_id=row_subject,
        key=subject_key(row_subject, decode(payload)),
        message=decode(payload),
        raw=json.dumps(payload),
    )


def _hooked(catalogue: Catalogue, *names: str) -> Catalogue:
    data = catalogue.model_dump(mode="json")
    for name in names:
        data["recipients"][name]["webhook"] = {
            "url": f"https://{name}.example.org/hook",
            "secret_env": "HOOK_SECRET",
        }
    return Catalogue.model_validate(data)


def _denied(permission: str, source: str = "api") -> dict[str, Any]:
    return {
        "event_id": f"e-{permission}-{source}",
        "subject": "cust-1",
        "subject_ref": REF,
        "seq": 3,
        "kind": "permission_denied",
        "permission": permission,
        "state": "denied",
        "notice_version": "1",
        "source": source,
        "occurred_at": "2026-11-29T10:00:00+00:00",
    }


def test_a_withdrawal_is_owed_to_the_permissions_recipients_with_a_webhook(
    mini_catalogue: Catalogue,
) -> None:
    catalogue = _hooked(mini_catalogue, "adnet", "carrier")
    owed = plan(catalogue, [_message(_denied("ads"))])
    assert [(d.recipient, d.subject_id) for d in owed] == [("adnet", "cust-1")]
    body = json.loads(owed[0].payload)
    assert body["type"] == OPT_OUT and body["reason"] == "withdrawal"
    assert body["permission"] == "ads" and body["purpose"] == "advertising"
    assert body["subject_ref"] == REF


def test_gpc_is_named_as_such_and_sale_or_sharing_is_flagged(mini_catalogue: Catalogue) -> None:
    catalogue = _hooked(mini_catalogue, "buyer", "shop")
    gpc = json.loads(plan(catalogue, [_message(_denied("sale", source="gpc"))])[0].payload)
    plain = json.loads(plan(catalogue, [_message(_denied("sale"))])[0].payload)
    recs = json.loads(plan(catalogue, [_message(_denied("recs"))])[0].payload)
    assert (gpc["reason"], gpc["sale_or_sharing"]) == ("gpc", True)
    assert (plain["reason"], plain["sale_or_sharing"]) == ("withdrawal", True)
    assert (recs["reason"], recs["sale_or_sharing"]) == ("withdrawal", False)


def test_grants_and_unhooked_recipients_owe_nothing(mini_catalogue: Catalogue) -> None:
    catalogue = _hooked(mini_catalogue, "carrier")
    granted = {**_denied("ads"), "kind": "permission_granted", "state": "granted"}
    assert plan(catalogue, [_message(granted), _message(_denied("ads"))]) == []
    assert plan(mini_catalogue, [_message(_denied("ads"))]) == []


def test_an_erasure_is_owed_to_every_recipient_with_a_webhook_by_reference_only(
    mini_catalogue: Catalogue,
) -> None:
    catalogue = _hooked(mini_catalogue, "adnet", "carrier", "buyer")
    ref = REF
    erased = {"event_id": "e-erased", "subject_ref": ref, "seq": 4, "kind": "subject_erased"}
    owed = plan(catalogue, [_message(erased)])
    assert sorted(d.recipient for d in owed) == ["adnet", "buyer", "carrier"]
    assert all(d.subject_id is None for d in owed)
    body = json.loads(owed[0].payload)
    assert body["type"] == ERASURE and body["subject_ref"] == ref and "subject" not in body
