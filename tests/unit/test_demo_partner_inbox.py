"""The demo partners: which recipients get a webhook at the demo receiver (only in the demo),
and how the receiver's inbox checks each delivery as a partner must."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from consentry.catalogue_io import load_catalogue
from consentry.config import Settings
from consentry.demo.boot import boot
from consentry.demo.partners import (
    SECRET_ENV,
    PartnerInbox,
    Received,
    Refused,
    partner_webhooks,
    partners,
)
from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_vocabulary import RecipientKind
from consentry.events.webhooks import sign

SECRET = "demo-partner-secret-" + "u" * 30
RECEIVER = "http://127.0.0.1:8001"


@pytest.fixture(scope="module")
def marketplace() -> Catalogue:
    return load_catalogue(None)  # the default catalogue, which the demo uses


def test_every_third_party_but_not_the_controller_gets_a_demo_webhook(
    marketplace: Catalogue,
) -> None:
    hooks = partner_webhooks(marketplace, RECEIVER + "/")
    third_parties = {
        rid for rid, r in marketplace.recipients.items() if r.kind is not RecipientKind.CONTROLLER
    }
    assert set(hooks) == set(partners(marketplace)) == third_parties
    assert {"adlytics", "bannerfield"} <= set(hooks) and "example_marketplace" not in hooks
    assert str(hooks["adlytics"].url) == f"{RECEIVER}/webhooks/adlytics"
    assert {h.secret_env for h in hooks.values()} == {SECRET_ENV}


def test_the_default_catalogue_sends_no_webhook_anywhere(marketplace: Catalogue) -> None:
    assert all(r.webhook is None for r in marketplace.recipients.values())


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'demo.db'}",
        demo_partners_url=RECEIVER,
        **extra,  # type: ignore[arg-type]
    )


def test_only_the_demo_points_the_partners_at_the_demo_receiver(tmp_path: Path) -> None:
    demo = boot(_settings(tmp_path, demo=True))
    served = boot(_settings(tmp_path, jwt_secret="s" * 40))
    try:
        hook = demo.catalogue.recipients["adlytics"].webhook
        assert hook is not None and str(hook.url) == f"{RECEIVER}/webhooks/adlytics"
        assert all(r.webhook is None for r in served.catalogue.recipients.values())
        # Operator configuration only: what subjects and replicas see is the same catalogue.
        assert demo.catalogue.model_dump(mode="json") == served.catalogue.model_dump(mode="json")
    finally:
        demo.close()
        served.close()


def test_webhooks_for_an_unknown_recipient_are_refused(marketplace: Catalogue) -> None:
    hooks = partner_webhooks(marketplace, RECEIVER)
    with pytest.raises(ValueError, match="nobody"):
        marketplace.with_webhooks({"nobody": hooks["adlytics"]})


def _inbox() -> PartnerInbox:
    return PartnerInbox(SECRET, {"adlytics": "Adlytics Network Inc"}, keep=10)


def _body(event: str = "ev-1") -> bytes:
    return json.dumps(
        {
            "type": "consentry.opt_out",
            "event_id": event,
            "subject": "cust-1",
            "permission": "sharing.ad_partners",
            "reason": "withdrawal",
        }
    ).encode()


def test_a_validly_signed_delivery_is_acknowledged_and_kept() -> None:
    inbox = _inbox()
    outcome = inbox.receive("adlytics", sign(SECRET, _body()), "ev-1", _body())
    assert isinstance(outcome, Received) and outcome.status == 200
    assert outcome.permission == "sharing.ad_partners" and outcome.subject == "cust-1"
    assert inbox.received("adlytics") == [outcome]
    assert "opt-out of sharing.ad_partners for cust-1" in outcome.describe()
    assert "sharing.ad_partners" in inbox.page()


@pytest.mark.parametrize(
    ("signature", "body"),
    [
        (None, _body()),
        ("", _body()),
        (sign("another-secret", _body()), _body()),
        (sign(SECRET, _body()), _body() + b" "),
        (sign(SECRET, _body(), int(time.time()) - 3600), _body()),
        ("t=abc,v1=00", _body()),
    ],
    ids=["unsigned", "empty", "another-secret", "another-body", "replayed", "garbage"],
)
def test_a_delivery_not_validly_signed_is_refused_with_401(
    signature: str | None, body: bytes
) -> None:
    inbox = _inbox()
    outcome = inbox.receive("adlytics", signature, "ev-1", body)
    assert isinstance(outcome, Refused) and outcome.status == 401
    assert inbox.received() == [] and inbox.refused() == [outcome]


def test_an_unknown_partner_or_a_body_that_is_not_an_object_is_refused() -> None:
    inbox = _inbox()
    unknown = inbox.receive("nobody", sign(SECRET, _body()), "ev-1", _body())
    assert isinstance(unknown, Refused) and unknown.status == 404
    listed = b"[1, 2]"
    not_an_object = inbox.receive("adlytics", sign(SECRET, listed), "ev-1", listed)
    assert isinstance(not_an_object, Refused) and not_an_object.status == 400
    assert inbox.received() == []


def test_a_repeated_delivery_is_acknowledged_again_but_listed_once() -> None:
    inbox = _inbox()
    first = inbox.receive("adlytics", sign(SECRET, _body()), "ev-1", _body())
    again = inbox.receive("adlytics", sign(SECRET, _body()), "ev-1", _body())
    assert isinstance(again, Received) and again.repeat and again.status == 200
    assert inbox.received() == [first]


def test_the_inbox_keeps_the_latest_deliveries_newest_first() -> None:
    inbox = _inbox()
    for n in range(15):
        body = _body(f"ev-{n}")
        inbox.receive("adlytics", sign(SECRET, body), None, body)  # event id from the body
    assert [r.event_id for r in inbox.received()] == [f"ev-{n}" for n in range(14, 4, -1)]
