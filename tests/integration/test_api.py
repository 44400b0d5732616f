"""The v1 HTTP contract: statuses, bodies, auth — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from consentry.bootstrap import Container
from support import TEST_SECRET, bearer

PROBLEM = "application/problem+json"


@pytest.fixture
def service(container: Container) -> dict[str, str]:
    return bearer(container.keys.create(["decide", "subjects:read", "subjects:write"]))


def subject_token(sub: str, *, secret: str = TEST_SECRET, minutes: int = 10) -> str:
    now = datetime.now(UTC)
    return jwt.encode(
        {"sub": sub, "iat": now, "exp": now + timedelta(minutes=minutes)}, secret, algorithm="HS256"
    )


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["detail"] and body["title"]
    return dict(body)


def test_catalog_is_public_and_localised(client: TestClient) -> None:
    fr = client.get("/v1/catalog", params={"locale": "fr"}).json()
    recs = next(p for p in fr["permissions"] if p["id"] == "recs")
    assert recs["title"] == "Recommandations personnalisées"
    assert recs["toggleable"] and recs["legal_basis"] == "consent"
    ads = next(p for p in fr["permissions"] if p["id"] == "ads")
    assert {
        "id": "adnet",
        "name": "Adnet Example Inc.",
        "country": "US",
        "kind": "ad_network",
        "outside_eea": True,
    } in ads["recipients"]
    orders = next(p for p in fr["permissions"] if p["id"] == "orders")
    assert not orders["toggleable"]


def test_catalog_in_an_unoffered_locale_is_404(client: TestClient) -> None:
    assert_problem(client.get("/v1/catalog", params={"locale": "de"}), 404)


def test_new_subject_sees_every_permission_at_its_default(
    client: TestClient, service: dict[str, str]
) -> None:
    body = client.get("/v1/subjects/s1/permissions", headers=service).json()
    by_id = {p["id"]: p for p in body["permissions"]}
    assert by_id["recs"] == {
        "id": "recs",
        "state": "default",
        "effective": False,
        "reason": "no_consent",
        "toggleable": True,
        "options": {},
        "notice_version": "2",
        "current_notice_version": "2",
        "updated_at": None,
        "source": None,
        "expires_at": None,
    }
    assert by_id["orders"]["effective"] and by_id["fraud"]["effective"]


def test_grant_then_withdraw_through_put(client: TestClient, service: dict[str, str]) -> None:
    granted = client.put(
        "/v1/subjects/s1/permissions/recs",
        json={"state": "granted", "notice_version": "2", "options": {"channel": "home"}},
        headers=service,
    )
    assert granted.status_code == 200
    body = granted.json()
    assert body["state"] == "granted" and body["effective"] and body["changed"]
    assert body["event_id"] and body["options"] == {"channel": "home"} and body["source"] == "api"
    withdrawn = client.put(
        "/v1/subjects/s1/permissions/recs", json={"state": "denied"}, headers=service
    ).json()
    assert withdrawn["state"] == "denied" and not withdrawn["effective"]
    assert withdrawn["event_id"] != body["event_id"]
    decision = client.post(
        "/v1/decisions",
        json={"subject": "s1", "purpose": "recommendations", "categories": ["behaviour.browsing"]},
        headers=service,
    )
    assert decision.json() == {"allowed": False, "reason": "denied", "permission": "recs"}


def test_unknown_permission_is_404(client: TestClient, service: dict[str, str]) -> None:
    body = assert_problem(
        client.put("/v1/subjects/s1/permissions/nope", json={"state": "granted"}, headers=service),
        404,
    )
    assert body["code"] == "unknown_permission"


def test_non_toggleable_permission_is_409(client: TestClient, service: dict[str, str]) -> None:
    body = assert_problem(
        client.put("/v1/subjects/s1/permissions/tax", json={"state": "denied"}, headers=service),
        409,
    )
    assert body["code"] == "not_toggleable"


def test_grant_on_outdated_notice_is_409_but_withdrawal_always_works(
    client: TestClient, service: dict[str, str]
) -> None:
    body = assert_problem(
        client.put(
            "/v1/subjects/s1/permissions/ads",
            json={"state": "granted", "notice_version": "2"},
            headers=service,
        ),
        409,
    )
    assert body["code"] == "notice_outdated"
    ok = client.put(
        "/v1/subjects/s1/permissions/ads",
        json={"state": "denied", "notice_version": "2"},
        headers=service,
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"state": "maybe"},
        {},
        {"state": "granted", "colour": "red"},
        {"state": "granted", "options": "x"},
        {"state": "granted", "expires_at": "2026-12-01T00:00:00"},
    ],
)
def test_bad_put_body_is_422(
    client: TestClient, service: dict[str, str], body: dict[str, object]
) -> None:
    problem = assert_problem(
        client.put("/v1/subjects/s1/permissions/recs", json=body, headers=service), 422
    )
    assert problem["errors"]


def test_non_json_body_is_422(client: TestClient, service: dict[str, str]) -> None:
    response = client.put(
        "/v1/subjects/s1/permissions/recs",
        content=b"{not json",
        headers={**service, "content-type": "application/json"},
    )
    assert_problem(response, 422)


def test_idempotency_key_returns_the_same_response(
    client: TestClient, service: dict[str, str]
) -> None:
    headers = {**service, "Idempotency-Key": "abc-123"}
    first = client.put(
        "/v1/subjects/s1/permissions/email",
        json={"state": "granted", "notice_version": "1"},
        headers=headers,
    )
    client.put("/v1/subjects/s1/permissions/email", json={"state": "denied"}, headers=service)
    again = client.put(
        "/v1/subjects/s1/permissions/email",
        json={"state": "granted", "notice_version": "1"},
        headers=headers,
    )
    assert again.status_code == 200 and again.json() == first.json()
    history = client.get("/v1/subjects/s1/history", headers=service).json()
    assert len(history["events"]) == 2
    reused = client.put(
        "/v1/subjects/s1/permissions/email", json={"state": "denied"}, headers=headers
    )
    assert assert_problem(reused, 422)["code"] == "idempotency_key_reused"


def test_patch_set_is_atomic(client: TestClient, service: dict[str, str]) -> None:
    bad = client.patch(
        "/v1/subjects/s1/permissions",
        json={"set": {"recs": "granted", "nope": "granted"}, "notice_versions": {"recs": "2"}},
        headers=service,
    )
    assert_problem(bad, 404)
    not_toggleable = client.patch(
        "/v1/subjects/s1/permissions",
        json={"set": {"recs": "granted", "orders": "denied"}, "notice_versions": {"recs": "2"}},
        headers=service,
    )
    assert_problem(not_toggleable, 409)
    assert client.get("/v1/subjects/s1/history", headers=service).json()["events"] == []
    ok = client.patch(
        "/v1/subjects/s1/permissions",
        json={
            "set": {"recs": "granted", "email": "granted"},
            "notice_versions": {"recs": "2", "email": "1"},
        },
        headers=service,
    ).json()
    assert sorted(ok["changed"]) == ["email", "recs"] and len(ok["event_ids"]) == 2


def test_patch_all_grants_every_consent_and_refuses_everything_refusable(
    client: TestClient, service: dict[str, str]
) -> None:
    granted = client.patch(
        "/v1/subjects/s1/permissions",
        json={
            "all": "granted",
            "notice_versions": {
                "recs": "2",
                "ads": "3",
                "email": "1",
                "sale": "1",
                "location": "1",
            },
        },
        headers=service,
    ).json()
    assert sorted(granted["changed"]) == ["ads", "email", "location", "recs", "sale"]
    refused = client.patch(
        "/v1/subjects/s1/permissions", json={"all": "denied"}, headers=service
    ).json()
    # Refusing also objects to the legitimate-interest use (fraud), which was on.
    assert sorted(refused["changed"]) == sorted([*granted["changed"], "fraud"])
    states = client.get("/v1/subjects/s1/permissions", headers=service).json()["permissions"]
    assert not any(p["effective"] for p in states if p["id"] in granted["changed"])


@pytest.mark.parametrize(
    "body", [{}, {"set": {}}, {"set": {"recs": "granted"}, "all": "denied"}, {"all": "sometimes"}]
)
def test_bad_patch_body_is_422(
    client: TestClient, service: dict[str, str], body: dict[str, object]
) -> None:
    assert_problem(client.patch("/v1/subjects/s1/permissions", json=body, headers=service), 422)


def test_history_pages_newest_first(client: TestClient, service: dict[str, str]) -> None:
    for state in ("granted", "denied", "granted"):
        client.put(
            "/v1/subjects/s1/permissions/recs",
            json={"state": state, "locale": "fr", "notice_version": "2"},
            headers=service,
        )
    first = client.get("/v1/subjects/s1/history", params={"limit": 2}, headers=service).json()
    assert [e["state"] for e in first["events"]] == ["granted", "denied"]
    assert first["events"][0]["prev_hash"] == first["events"][1]["hash"]
    assert first["events"][0]["locale"] == "fr" and first["events"][0]["notice_version"] == "2"
    rest = client.get(
        "/v1/subjects/s1/history",
        params={"limit": 2, "cursor": first["next_cursor"]},
        headers=service,
    ).json()
    assert [e["seq"] for e in rest["events"]] == [1] and rest["next_cursor"] is None
    assert_problem(
        client.get("/v1/subjects/s1/history", params={"cursor": "x"}, headers=service), 422
    )


def test_decision_batch_answers_in_order(client: TestClient, service: dict[str, str]) -> None:
    client.put(
        "/v1/subjects/s1/permissions/recs",
        json={"state": "granted", "notice_version": "2"},
        headers=service,
    )
    checks = [
        {"subject": "s1", "purpose": "recommendations", "categories": ["behaviour.browsing"]},
        {"subject": "s2", "purpose": "recommendations", "categories": ["behaviour.browsing"]},
        {"subject": "s1", "purpose": "teleportation", "categories": ["behaviour.browsing"]},
        {"subject": "s1", "purpose": "tax_records", "categories": ["behaviour.purchases"]},
    ]
    results = client.post("/v1/decisions/batch", json={"checks": checks}, headers=service).json()[
        "results"
    ]
    assert [(r["allowed"], r["reason"]) for r in results] == [
        (True, "consent"),
        (False, "no_consent"),
        (False, "unknown_purpose"),
        (True, "legal_obligation"),
    ]


def test_decision_needs_categories(client: TestClient, service: dict[str, str]) -> None:
    assert_problem(
        client.post(
            "/v1/decisions",
            json={"subject": "s1", "purpose": "recommendations", "categories": []},
            headers=service,
        ),
        422,
    )


def test_oversized_batch_is_refused(
    client: TestClient, service: dict[str, str], container: Container
) -> None:
    check = {"subject": "s1", "purpose": "recommendations", "categories": ["behaviour.browsing"]}
    body = {"checks": [check] * (container.settings.max_batch + 1)}
    assert_problem(client.post("/v1/decisions/batch", json=body, headers=service), 413)


def test_device_report_gates_device_data(client: TestClient, service: dict[str, str]) -> None:
    client.put(
        "/v1/subjects/s1/permissions/location",
        json={"state": "granted", "notice_version": "1"},
        headers=service,
    )
    ask = {
        "subject": "s1",
        "purpose": "delivery.location",
        "categories": ["device.location.precise"],
    }
    assert (
        client.post("/v1/decisions", json=ask, headers=service).json()["reason"]
        == "device_not_granted"
    )
    report = client.put(
        "/v1/subjects/s1/devices/phone-1",
        json={
            "platform": "android",
            "app_version": "5.1",
            "os_permissions": {"location": "precise", "camera": "denied"},
        },
        headers=service,
    )
    assert report.status_code == 200 and report.json()["os_permissions"]["location"] == "precise"
    assert client.post("/v1/decisions", json=ask, headers=service).json()["allowed"] is True
    listed = client.get("/v1/subjects/s1/devices", headers=service).json()["devices"]
    assert [d["device_id"] for d in listed] == ["phone-1"]


@pytest.mark.parametrize(
    "body",
    [
        {"platform": "android", "app_version": "5.1", "os_permissions": {"telepathy": "granted"}},
        {"platform": "android", "app_version": "5.1", "os_permissions": {"location": "everywhere"}},
        {"platform": "toaster", "app_version": "5.1", "os_permissions": {}},
    ],
)
def test_bad_device_report_is_422(
    client: TestClient, service: dict[str, str], body: dict[str, object]
) -> None:
    assert_problem(client.put("/v1/subjects/s1/devices/phone-1", json=body, headers=service), 422)


# -- authentication and authorisation ----------------------------------------------------------


def test_no_credentials_is_401(client: TestClient) -> None:
    response = client.get("/v1/subjects/s1/permissions")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token",
    [
        "csk_0000_notakey",
        subject_token("s1", secret="another-secret-" + "y" * 40),
        subject_token("s1", minutes=-5),
        jwt.encode({"sub": "s1", "exp": 9999999999}, key="", algorithm="none"),
        "garbage",
    ],
    ids=["unknown-key", "forged-jwt", "expired-jwt", "alg-none-jwt", "garbage"],
)
def test_bad_credentials_are_401(client: TestClient, token: str) -> None:
    assert_problem(client.get("/v1/subjects/s1/permissions", headers=bearer(token)), 401)


def test_subject_token_reaches_only_its_own_subject(client: TestClient) -> None:
    mine = bearer(subject_token("s1"))
    assert client.get("/v1/subjects/s1/permissions", headers=mine).status_code == 200
    put = client.put(
        "/v1/subjects/s1/permissions/recs",
        json={"state": "granted", "notice_version": "2"},
        headers=mine,
    )
    assert put.status_code == 200 and put.json()["source"] == "web"
    other = client.get("/v1/subjects/s2/permissions", headers=mine)
    assert assert_problem(other, 404)["detail"] == "no such subject"
    assert_problem(
        client.put(
            "/v1/subjects/s2/permissions/recs",
            json={"state": "granted", "notice_version": "2"},
            headers=mine,
        ),
        404,
    )


def test_subject_token_cannot_ask_for_decisions(client: TestClient) -> None:
    body = {"subject": "s1", "purpose": "recommendations", "categories": ["behaviour.browsing"]}
    assert_problem(
        client.post("/v1/decisions", json=body, headers=bearer(subject_token("s1"))), 403
    )


def test_scopes_are_enforced(client: TestClient, container: Container) -> None:
    decide_only = bearer(container.keys.create(["decide"]))
    read_only = bearer(container.keys.create(["subjects:read"]))
    body = {"subject": "s1", "purpose": "recommendations", "categories": ["behaviour.browsing"]}
    assert client.post("/v1/decisions", json=body, headers=decide_only).status_code == 200
    assert_problem(client.get("/v1/subjects/s1/permissions", headers=decide_only), 403)
    assert client.get("/v1/subjects/s1/permissions", headers=read_only).status_code == 200
    assert_problem(
        client.put(
            "/v1/subjects/s1/permissions/recs",
            json={"state": "granted", "notice_version": "2"},
            headers=read_only,
        ),
        403,
    )
    assert_problem(client.post("/v1/decisions", json=body, headers=read_only), 403)
    assert_problem(client.get("/metrics", headers=read_only), 403)


def test_admin_key_sees_metrics(
    client: TestClient, admin_key: str, service: dict[str, str]
) -> None:
    client.post(
        "/v1/decisions",
        json={"subject": "s1", "purpose": "recommendations", "categories": ["behaviour.browsing"]},
        headers=service,
    )
    text = client.get("/metrics", headers=bearer(admin_key)).text
    assert 'consentry_decisions_total{allowed="false",reason="no_consent"} 1.0' in text
    assert 'route="/v1/decisions"' in text


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/catalog",
        "/v1/subjects/{sid}/permissions",
        "/v1/subjects/{sid}/permissions/{pid}",
        "/v1/subjects/{sid}/history",
        "/v1/decisions",
        "/v1/decisions/batch",
        "/v1/subjects/{sid}/devices/{device_id}",
    ):
        assert path in paths


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    assert_problem(client.get("/v2/nothing"), 404)


def test_oversized_body_is_413(client: TestClient, service: dict[str, str]) -> None:
    response = client.put(
        "/v1/subjects/s1/permissions/recs",
        content=b"x" * 1_000_001,
        headers={**service, "content-type": "application/json"},
    )
    assert_problem(response, 413)


def test_a_revoked_service_key_is_refused_at_once(client: TestClient, container: Container) -> None:
    secret = container.keys.create(["decide"], "recommendations")
    body = {"subject": "s1", "purpose": "advertising", "categories": ["behaviour.browsing"]}
    assert client.post("/v1/decisions", json=body, headers=bearer(secret)).status_code == 200
    (record,) = [r for r in container.keys.records() if r.name == "recommendations"]
    container.keys.revoke(record.key_id)
    refused = client.post("/v1/decisions", json=body, headers=bearer(secret))
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
