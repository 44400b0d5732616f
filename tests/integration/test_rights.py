"""Rights and lifecycle: erasure with proof kept, export, jurisdictions, objection,
do-not-sell, time-limited grants — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.bootstrap import Container
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.services.ledger import verify
from consentry.storage import deliveries
from consentry.storage.tables import metadata
from support import TEST_SECRET, bearer

SID = "cust-8f3a-amelie"
SECRET_OPTION = "Amelie's phone in Liege"


@pytest.fixture
def service(container: Container) -> dict[str, str]:
    return bearer(container.keys.create(["decide", "subjects:read", "subjects:write"]))


def own_token(sub: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return bearer(
        jwt.encode({"sub": sub, "exp": now + timedelta(minutes=5)}, TEST_SECRET, algorithm="HS256")
    )


def ask(
    client: TestClient, headers: dict[str, str], purpose: str, category: str, sid: str = SID
) -> dict[str, Any]:
    body = {"subject": sid, "purpose": purpose, "categories": [category]}
    result: dict[str, Any] = client.post("/v1/decisions", json=body, headers=headers).json()
    return result


def every_value(container: Container) -> str:
    """Every cell of every table, as text: what a database dump would show."""
    cells: list[str] = []
    with container.db.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                cells.extend(str(v) for v in row)
    return "\n".join(cells)


def test_erasure_leaves_no_personal_value_and_keeps_the_chain(
    client: TestClient, service: dict[str, str], container: Container
) -> None:
    mine = own_token(SID)
    client.put(
        f"/v1/subjects/{SID}/permissions/recs",
        json={"state": "granted", "notice_version": "2", "options": {"device": SECRET_OPTION}},
        headers=mine,
    )
    client.put(
        f"/v1/subjects/{SID}/permissions/ads",
        json={"state": "granted", "notice_version": "3"},
        headers={**mine, "Idempotency-Key": "k1"},
    )
    client.put(f"/v1/subjects/{SID}/permissions/ads", json={"state": "denied"}, headers=service)
    container.consents.change(
        SID, [Change("email", ChoiceState.GRANTED)], Context(source="app", channel=SECRET_OPTION)
    )
    client.put(
        f"/v1/subjects/{SID}/devices/phone-liege",
        json={
            "platform": "android",
            "app_version": "5.1",
            "os_permissions": {"location": "precise"},
        },
        headers=service,
    )
    client.put(f"/v1/subjects/{SID}", json={"jurisdiction": "BE"}, headers=service)
    container.consents.change("someone-else", [Change("recs", ChoiceState.GRANTED)], Context())
    before = every_value(container)
    # Before: the projection, devices and idempotency rows hold them in plain text.
    assert SID in before and "phone-liege" in before and SECRET_OPTION in before
    erased = client.delete(f"/v1/subjects/{SID}", headers=mine)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert (
        body["erased"]
        and body["removed"]["permission_states"] == 3
        and body["removed"]["devices"] == 1
    )
    after = every_value(container)
    for personal in (SID, SECRET_OPTION, "phone-liege", f"subject:{SID}"):
        assert personal not in after, personal
    result = verify(container.db)
    assert result.broken is None and result.subjects == 2 and result.events == 6
    assert "someone-else" in after  # only the erased subject is gone


def test_after_erasure_the_same_id_starts_a_new_empty_subject_and_the_old_chain_still_verifies(
    client: TestClient, service: dict[str, str], container: Container
) -> None:
    client.put(
        f"/v1/subjects/{SID}/permissions/recs",
        json={"state": "granted", "notice_version": "2", "options": {"device": SECRET_OPTION}},
        headers=service,
    )
    client.delete(f"/v1/subjects/{SID}", headers=service)
    states = {
        p["id"]: p
        for p in client.get(f"/v1/subjects/{SID}/permissions", headers=service).json()[
            "permissions"
        ]
    }
    assert states["recs"]["state"] == "default" and not states["recs"]["effective"]
    events = client.get(f"/v1/subjects/{SID}/history", headers=service).json()["events"]
    assert events == []  # the id no longer leads to the old chain
    assert ask(client, service, "recommendations", "behaviour.browsing")["allowed"] is False
    client.put(f"/v1/subjects/{SID}/permissions/ads", json={"state": "denied"}, headers=service)
    again = client.get(f"/v1/subjects/{SID}/history", headers=service).json()["events"]
    assert [(e["seq"], e["permission"]) for e in again] == [(1, "ads")]  # a new chain
    result = verify(container.db)
    assert result.broken is None and (result.subjects, result.events) == (2, 3)


def test_erasure_of_another_subject_is_404_for_a_subject_token(client: TestClient) -> None:
    response = client.delete("/v1/subjects/victim", headers=own_token(SID))
    assert response.status_code == 404


def test_export_json_holds_state_history_devices_and_recipients(
    client: TestClient, service: dict[str, str]
) -> None:
    client.put(
        f"/v1/subjects/{SID}/permissions/ads",
        json={
            "state": "granted",
            "notice_version": "3",
            "options": {"device": SECRET_OPTION},
            "locale": "fr",
        },
        headers=service,
    )
    client.put(
        f"/v1/subjects/{SID}/permissions/recs",
        json={"state": "granted", "notice_version": "2"},
        headers=service,
    )
    client.put(
        f"/v1/subjects/{SID}/devices/p1",
        json={"platform": "ios", "app_version": "2", "os_permissions": {"camera": "granted"}},
        headers=service,
    )
    response = client.get(f"/v1/subjects/{SID}/export", headers=service)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert "attachment" in response.headers["content-disposition"]
    doc = response.json()
    assert doc["subject"] == SID and doc["controller"]["name"] == "Example Shop B.V."
    assert {p["id"]: p["state"] for p in doc["permissions"]}["ads"] == "granted"
    assert [e["permission"] for e in doc["history"]] == ["ads", "recs"]
    first = doc["history"][0]
    assert first["options"] == {"device": SECRET_OPTION}
    assert (
        first["notice"]["title"] == "Publicité personnalisée" and first["notice"]["locale"] == "fr"
    )
    assert {r["id"] for r in doc["recipients_receiving_data"]} >= {"adnet", "shop", "carrier"}
    assert doc["devices"][0]["os_permissions"] == {"camera": "granted"}


def test_export_shows_the_notice_text_of_the_version_that_was_shown(
    client: TestClient, service: dict[str, str]
) -> None:
    for version in ("1", "2"):
        response = client.put(
            f"/v1/subjects/{SID}/permissions/recs",
            json={"state": "granted", "notice_version": version, "locale": "fr"},
            headers=service,
        )
        assert response.status_code == 200, response.text
        client.put(
            f"/v1/subjects/{SID}/permissions/recs", json={"state": "denied"}, headers=service
        )
    history = client.get(f"/v1/subjects/{SID}/export", headers=service).json()["history"]
    shown = [
        (e["notice"]["version"], e["notice"]["text"]) for e in history if e["state"] == "granted"
    ]
    assert shown == [
        ("1", "Nous utilisons vos achats pour suggérer des produits."),
        ("2", "Nous utilisons vos achats pour vous suggérer des produits."),
    ]


def test_export_holds_opt_out_deliveries_and_every_access_report(
    client: TestClient, service: dict[str, str], container: Container
) -> None:
    withdrawn = client.put(
        f"/v1/subjects/{SID}/permissions/ads", json={"state": "denied"}, headers=service
    ).json()
    now = datetime.now(UTC)
    body = json.dumps({"type": "opt_out", "permission": "ads"})
    with container.db.write() as conn:
        deliveries.enqueue(
            conn, [deliveries.NewDelivery(withdrawn["event_id"], SID, "adnet", body)], now
        )
    reporter = bearer(container.keys.create(["uses:write"], name="recommendations-service"))
    uses = [{"subject": SID, "purpose": "order_fulfilment", "categories": ["order.address"]}] * 1203
    for start in range(0, len(uses), 500):
        answer = client.post("/v1/uses", json={"uses": uses[start : start + 500]}, headers=reporter)
        assert answer.status_code == 200, answer.text
    doc = client.get(f"/v1/subjects/{SID}/export", headers=service).json()
    (delivery,) = doc["opt_out_deliveries"]
    assert delivery["recipient"] == "adnet" and delivery["permission"] == "ads"
    assert delivery["status"] == "pending" and delivery["acknowledged_at"] is None
    assert len(doc["access_reports"]) == 1203
    first = doc["access_reports"][0]
    assert first["purpose"] == "order_fulfilment" and first["allowed_then"] is True
    assert first["service"] == "recommendations-service"  # the key's label


def test_export_streams_a_long_history_in_order(
    container: Container, client: TestClient, service: dict[str, str]
) -> None:
    states = [ChoiceState.GRANTED, ChoiceState.DENIED]
    for i in range(1203):
        container.consents.change(SID, [Change("recs", states[i % 2], options={"n": i})], Context())
    doc = client.get(f"/v1/subjects/{SID}/export", headers=service).json()
    assert [e["seq"] for e in doc["history"]] == list(range(1, 1204))
    assert doc["history"][-1]["options"] == {"n": 1202}


def test_export_csv_has_one_row_per_event(client: TestClient, service: dict[str, str]) -> None:
    for state in ("granted", "denied"):
        client.put(
            f"/v1/subjects/{SID}/permissions/email",
            json={"state": state, "notice_version": "1"},
            headers=service,
        )
    response = client.get(f"/v1/subjects/{SID}/export", params={"format": "csv"}, headers=service)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["permission"], r["state"]) for r in rows] == [
        ("email", "granted"),
        ("email", "denied"),
    ]
    assert all(len(r["hash"]) == 64 for r in rows)


def test_export_in_an_unknown_format_is_422(client: TestClient, service: dict[str, str]) -> None:
    assert (
        client.get(
            f"/v1/subjects/{SID}/export", params={"format": "xml"}, headers=service
        ).status_code
        == 422
    )


def test_jurisdiction_selects_the_defaults(client: TestClient, service: dict[str, str]) -> None:
    assert ask(client, service, "sale", "behaviour.purchases")["reason"] == "no_consent"
    set_ca = client.put(
        f"/v1/subjects/{SID}", json={"jurisdiction": "us-ca"}, headers=service
    ).json()
    assert set_ca["jurisdiction"] == "US-CA" and set_ca["rules"].startswith("opt-out")
    assert ask(client, service, "sale", "behaviour.purchases") == {
        "allowed": True,
        "reason": "jurisdiction_default",
        "permission": "sale",
    }
    set_be = client.put(f"/v1/subjects/{SID}", json={"jurisdiction": "BE"}, headers=service).json()
    assert set_be["region"] == "EEA" and set_be["rules"].startswith("opt-in")
    assert ask(client, service, "sale", "behaviour.purchases")["allowed"] is False
    assert client.get(f"/v1/subjects/{SID}", headers=service).json()["jurisdiction"] == "BE"


def test_bad_jurisdiction_is_422_and_subjects_cannot_set_their_own(
    client: TestClient, service: dict[str, str]
) -> None:
    assert (
        client.put(
            f"/v1/subjects/{SID}", json={"jurisdiction": "Belgium"}, headers=service
        ).status_code
        == 422
    )
    assert (
        client.put(
            f"/v1/subjects/{SID}", json={"jurisdiction": "US-CA"}, headers=own_token(SID)
        ).status_code
        == 403
    )


def test_do_not_sell_withdraws_sale_and_sharing_only(
    client: TestClient, service: dict[str, str]
) -> None:
    client.put(f"/v1/subjects/{SID}", json={"jurisdiction": "US-CA"}, headers=service)
    client.patch(
        f"/v1/subjects/{SID}/permissions",
        json={
            "set": {"ads": "granted", "recs": "granted"},
            "notice_versions": {"ads": "3", "recs": "2"},
        },
        headers=service,
    )
    first = client.put(f"/v1/subjects/{SID}/do-not-sell", headers=own_token(SID)).json()
    assert sorted(first["changed"]) == ["ads", "sale"]
    assert ask(client, service, "sale", "behaviour.purchases")["reason"] == "denied"
    assert ask(client, service, "advertising", "behaviour.browsing")["reason"] == "denied"
    assert ask(client, service, "recommendations", "behaviour.browsing")["allowed"] is True
    again = client.put(f"/v1/subjects/{SID}/do-not-sell", headers=service).json()
    assert again["changed"] == []


def test_objection_stops_legitimate_interest(client: TestClient, service: dict[str, str]) -> None:
    assert ask(client, service, "fraud_prevention", "behaviour.purchases")["allowed"] is True
    objected = client.put(
        f"/v1/subjects/{SID}/objections/fraud", json={"objected": True}, headers=own_token(SID)
    )
    assert objected.status_code == 200 and objected.json()["changed"] == ["fraud"]
    assert ask(client, service, "fraud_prevention", "behaviour.purchases")["reason"] == "objected"
    client.put(f"/v1/subjects/{SID}/objections/fraud", json={"objected": False}, headers=service)
    assert ask(client, service, "fraud_prevention", "behaviour.purchases")["allowed"] is True


def test_an_objection_or_a_grant_length_of_the_wrong_type_is_refused_not_coerced(
    client: TestClient, service: dict[str, str]
) -> None:
    for body in ({"objected": 0}, {"objected": 1}, {"objected": "yes"}):
        response = client.put(f"/v1/subjects/{SID}/objections/fraud", json=body, headers=service)
        assert response.status_code == 422, body
    assert ask(client, service, "fraud_prevention", "behaviour.purchases")["allowed"] is True
    for days in ("7", 7.0, True):
        response = client.put(
            f"/v1/subjects/{SID}/permissions/email",
            json={"state": "granted", "notice_version": "1", "days": days},
            headers=service,
        )
        assert response.status_code == 422, days
    listed = client.get(f"/v1/subjects/{SID}/permissions", headers=service).json()
    assert {p["id"]: p["state"] for p in listed["permissions"]}["email"] != "granted"


def test_objection_to_a_consent_permission_is_409(
    client: TestClient, service: dict[str, str]
) -> None:
    response = client.put(
        f"/v1/subjects/{SID}/objections/recs", json={"objected": True}, headers=service
    )
    assert response.status_code == 409 and "withdraw consent instead" in response.json()["detail"]


def test_time_limited_grants_expire(
    client: TestClient,
    service: dict[str, str],
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = datetime.now(UTC)
    once = client.put(
        f"/v1/subjects/{SID}/permissions/recs",
        json={"state": "granted", "notice_version": "2", "duration": "once"},
        headers=service,
    ).json()
    week = client.put(
        f"/v1/subjects/{SID}/permissions/email",
        json={"state": "granted", "notice_version": "1", "days": 7},
        headers=service,
    ).json()
    assert (
        timedelta(minutes=59)
        < datetime.fromisoformat(once["expires_at"]) - start
        < timedelta(minutes=61)
    )
    assert (
        timedelta(days=6, hours=23)
        < datetime.fromisoformat(week["expires_at"]) - start
        < timedelta(days=7, minutes=1)
    )
    assert ask(client, service, "recommendations", "behaviour.browsing")["allowed"] is True
    for clocked in (container.consents, container.queries, container.decisions):
        monkeypatch.setattr(clocked, "clock", lambda: start + timedelta(hours=2))
    assert ask(client, service, "recommendations", "behaviour.browsing")["reason"] == "expired"
    assert ask(client, service, "marketing.email", "profile.contact")["allowed"] is True
    states = {
        p["id"]: p
        for p in client.get(f"/v1/subjects/{SID}/permissions", headers=service).json()[
            "permissions"
        ]
    }
    assert (
        states["recs"]["state"] == "granted"
        and states["recs"]["reason"] == "expired"
        and not states["recs"]["effective"]
    )


@pytest.mark.parametrize(
    "body",
    [
        {"state": "denied", "days": 3},
        {"state": "granted", "notice_version": "2", "days": 0},
        {"state": "granted", "notice_version": "2", "days": 3, "duration": "once"},
        {"state": "granted", "notice_version": "2", "duration": "forever"},
        {"state": "granted", "notice_version": "2", "expires_at": "2020-01-01T00:00:00Z"},
    ],
)
def test_bad_time_limits_are_422(
    client: TestClient, service: dict[str, str], body: dict[str, object]
) -> None:
    response = client.put(f"/v1/subjects/{SID}/permissions/recs", json=body, headers=service)
    assert response.status_code == 422, response.text
    assert json.loads(response.text)["status"] == 422
