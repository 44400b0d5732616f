"""Third parties hear of opt-outs and erasures through signed webhooks, sent to a real HTTP
receiver: retried with backoff, dead-lettered, listed and retried by admins, and shown to the
subject per recipient — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.events.embedded import relay_config, with_relay
from consentry.events.relay import Relay, build_relay
from consentry.events.webhooks import EVENT_HEADER, SIGNATURE_HEADER, verify_signature
from consentry.storage.tables import webhook_deliveries
from support import TEST_SECRET, bearer
from webhook_receiver import SECRET, SECRET_ENV, Receiver, receiving, webhook_catalogue

BACKOFF = 0.05
MAX_ATTEMPTS = 3


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout  # an anti-hang bound, not a latency assertion
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with receiving() as r:
        yield r


@pytest.fixture
def hooked(database_url: str, tmp_path: Path, receiver: Receiver) -> Iterator[Container]:
    """A container whose catalogue gives adnet, buyer and carrier a webhook at the receiver."""
    settings = Settings(
        database_url=database_url,
        catalogue=webhook_catalogue(tmp_path, receiver.url, ["adnet", "buyer", "carrier"]),
        jwt_secret=TEST_SECRET,
        webhook_backoff=BACKOFF,
        webhook_max_attempts=MAX_ATTEMPTS,
        webhook_timeout=2.0,
    )
    container = bootstrap(settings)
    yield container
    container.close()


@pytest.fixture
def relay(hooked: Container) -> Iterator[Relay]:
    """The relay running in a thread, as `consentry relay` runs it (HTTP feed, no NATS)."""
    import threading

    r = build_relay(hooked.db, hooked.catalogue, relay_config(hooked.settings))
    thread = threading.Thread(target=r.run, daemon=True)
    thread.start()
    yield r
    r.stop()
    thread.join(timeout=10)
    r.close()


def withdraw(container: Container, sid: str, perm: str, source: str = "api") -> None:
    container.consents.change(sid, [Change(perm, ChoiceState.GRANTED)], Context())
    container.consents.change(sid, [Change(perm, ChoiceState.DENIED)], Context(source=source))


def rows(container: Container) -> list[Any]:
    with container.db.read() as conn:
        return list(conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id)))


def status(container: Container, index: int = 0) -> str | None:
    found = rows(container)
    return str(found[index].status) if len(found) > abs(index) else None


def test_a_withdrawal_reaches_the_recipient_signed_and_is_acknowledged(
    hooked: Container, relay: Relay, receiver: Receiver
) -> None:
    withdraw(hooked, "cust-1", "ads")
    wait_until(lambda: len(receiver.bodies("/adnet")) == 1, "the adnet webhook")
    got = receiver.bodies("/adnet")[0]
    assert verify_signature(SECRET, got.headers[SIGNATURE_HEADER], got.body)
    assert not verify_signature(SECRET, got.headers[SIGNATURE_HEADER], got.body + b" ")
    body = json.loads(got.body)
    assert body["type"] == "consentry.opt_out" and body["subject"] == "cust-1"
    assert body["permission"] == "ads" and body["reason"] == "withdrawal"
    assert got.headers[EVENT_HEADER] == body["event_id"]
    wait_until(lambda: status(hooked) == "acknowledged", "the acknowledgement")
    row = rows(hooked)[0]
    assert row.attempts == 1 and row.sent_at is not None and row.acknowledged_at is not None
    # The grant before it owes nothing; "ads" is not shared with carrier or buyer.
    assert [r.recipient for r in rows(hooked)] == ["adnet"]
    assert receiver.bodies("/carrier") == [] and receiver.bodies("/buyer") == []


def test_a_gpc_signal_reaches_every_sale_and_sharing_recipient(
    hooked: Container, relay: Relay, receiver: Receiver
) -> None:
    hooked.consents.change(
        "cust-2",
        [Change("ads", ChoiceState.GRANTED), Change("sale", ChoiceState.GRANTED)],
        Context(),
    )
    hooked.consents.opt_out_of_sale("cust-2", Context(source="gpc"))
    wait_until(lambda: len(receiver.bodies()) == 2, "both webhooks")
    bodies = {r.path: json.loads(r.body) for r in receiver.bodies()}
    assert bodies["/adnet"]["reason"] == "gpc" and bodies["/buyer"]["reason"] == "gpc"
    assert bodies["/buyer"]["sale_or_sharing"] is True


def test_a_failing_recipient_is_retried_with_backoff_until_it_acknowledges(
    hooked: Container, relay: Relay, receiver: Receiver
) -> None:
    receiver.answer([500, 503])
    withdraw(hooked, "cust-3", "ads")
    wait_until(lambda: len(receiver.bodies("/adnet")) == 3, "three attempts")
    wait_until(lambda: status(hooked) == "acknowledged", "the acknowledgement")
    row = rows(hooked)[0]
    assert row.attempts == 3 and row.last_error is None
    got = receiver.bodies("/adnet")
    # Each retry waits at least half its backoff (base, then double): never sooner.
    assert got[1].at - got[0].at >= BACKOFF / 2
    assert got[2].at - got[1].at >= BACKOFF
    assert len({r.headers[EVENT_HEADER] for r in got}) == 1  # one event, for dedupe


def test_a_recipient_that_never_acknowledges_ends_in_the_dead_letters_and_can_be_retried(
    hooked: Container, relay: Relay, receiver: Receiver
) -> None:
    receiver.answer([500] * MAX_ATTEMPTS)
    withdraw(hooked, "cust-4", "ads")
    wait_until(lambda: status(hooked) == "dead", "the dead letter")
    assert len(receiver.bodies("/adnet")) == MAX_ATTEMPTS
    admin = bearer(hooked.keys.create(["admin"]))
    reader = bearer(hooked.keys.create(["subjects:read"]))
    with TestClient(create_app(hooked)) as api:
        assert api.get("/v1/admin/deliveries", headers=reader).status_code == 403
        dead = api.get("/v1/admin/deliveries?status=dead", headers=admin).json()["deliveries"]
        assert [(d["recipient"], d["subject"], d["attempts"]) for d in dead] == [
            ("adnet", "cust-4", MAX_ATTEMPTS)
        ]
        assert dead[0]["last_error"] == "HTTP 500" and dead[0]["sent_at"] is not None
        view = api.get("/v1/subjects/cust-4/deliveries", headers=reader).json()
        assert view["recipients"][0]["status"] == "dead"
        retried = api.post(f"/v1/admin/deliveries/{dead[0]['id']}/retry", headers=admin)
        assert retried.status_code == 200 and retried.json()["attempts"] == 0
        assert retried.json()["status"] == "sent"  # it reached the recipient before
        wait_until(lambda: status(hooked) == "acknowledged", "the retried delivery")
        assert api.get("/v1/admin/deliveries?status=dead", headers=admin).json() == {
            "deliveries": [],
            "next_after": None,
        }
        again = api.post(f"/v1/admin/deliveries/{dead[0]['id']}/retry", headers=admin)
        assert again.status_code == 409
        assert api.post("/v1/admin/deliveries/999999/retry", headers=admin).status_code == 404


def test_the_subject_sees_per_recipient_when_the_opt_out_was_sent_and_acknowledged(
    hooked: Container, relay: Relay, receiver: Receiver
) -> None:
    receiver.answer([200, 500, 500, 500])  # adnet acknowledges; buyer does not (yet)
    withdraw(hooked, "cust-5", "ads")
    wait_until(lambda: len(receiver.bodies("/adnet")) == 1, "adnet's delivery")
    withdraw(hooked, "cust-5", "sale")
    wait_until(lambda: len(receiver.bodies("/buyer")) >= 1, "buyer's first attempt")
    own = bearer(hooked.tokens.issue("cust-5"))
    with TestClient(create_app(hooked)) as api:
        view = api.get("/v1/subjects/cust-5/deliveries", headers=own).json()
        assert api.get("/v1/subjects/cust-6/deliveries", headers=own).status_code == 404
    by_name = {r["recipient"]: r for r in view["recipients"]}
    assert by_name["adnet"]["status"] == "acknowledged"
    assert by_name["adnet"]["name"] == "Adnet Example Inc."
    assert by_name["adnet"]["sent_at"] and by_name["adnet"]["acknowledged_at"]
    assert by_name["adnet"]["deliveries"][0]["permission"] == "ads"
    assert by_name["buyer"]["status"] in ("sent", "pending", "dead")
    assert by_name["buyer"]["acknowledged_at"] is None


def test_an_erasure_notifies_every_recipient_by_reference_and_forgets_the_subjects_deliveries(
    hooked: Container, relay: Relay, receiver: Receiver
) -> None:
    withdraw(hooked, "cust-7", "ads")
    wait_until(lambda: len(receiver.bodies("/adnet")) == 1, "the opt-out")
    outcome = hooked.rights.erase("cust-7", Context())
    wait_until(lambda: len(receiver.bodies()) == 4, "the erasure notices")
    notices = [json.loads(r.body) for r in receiver.bodies()[1:]]
    assert {n["recipient"] for n in notices} == {"adnet", "buyer", "carrier"}
    assert all(n["type"] == "consentry.erasure" and "subject" not in n for n in notices)
    assert {n["subject_ref"] for n in notices} == {outcome.subject_ref}
    assert all(r.subject_id is None for r in rows(hooked))  # nothing names the subject now


def test_a_missing_signing_secret_is_recorded_and_nothing_is_sent(
    hooked: Container, relay: Relay, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV)
    withdraw(hooked, "cust-8", "ads")
    wait_until(lambda: any(r.attempts for r in rows(hooked)), "an attempt")
    assert SECRET_ENV in rows(hooked)[0].last_error
    assert rows(hooked)[0].sent_at is None and receiver.bodies() == []


def test_the_embedded_relay_runs_with_the_app_and_sends_webhooks(
    hooked: Container, receiver: Receiver
) -> None:
    service = bearer(hooked.keys.create(["subjects:write"]))
    # The default on SQLite; on PostgreSQL `consentry serve` runs it when asked to.
    hooked.settings = hooked.settings.model_copy(update={"relay": "embedded"})
    app = with_relay(create_app(hooked), hooked)
    with TestClient(app) as api:
        for state in ("granted", "denied"):
            put = api.put(
                "/v1/subjects/cust-9/permissions/ads",
                json={"state": state, "notice_version": "3"},
                headers=service,
            )
            assert put.status_code == 200
        wait_until(lambda: len(receiver.bodies("/adnet")) == 1, "the embedded relay's webhook")
