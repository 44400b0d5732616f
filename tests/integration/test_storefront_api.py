"""The storefront runtime's endpoints over HTTP: the script, the device subject's visit, the
banner's choices, the merge on sign-in, and what a device credential can and cannot do.
Runs on SQLite and PostgreSQL (the ``client`` fixture)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.services.tokens import TokenService
from consentry.standards.gpp import decode_gpp
from consentry.standards.usnat import UsNat
from consentry.storefront.device import COOKIE
from support import bearer, make_settings

BUDGET = 10 * 1024  # consentry.js, gzipped


def visit(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/storefront/visit", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_consentry_js_fits_its_size_budget_gzipped(client: TestClient) -> None:
    response = client.get("/consentry.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    size = len(gzip.compress(response.content, compresslevel=9))
    assert size <= BUDGET, f"consentry.js is {size} bytes gzipped, over {BUDGET}"
    assert b"/*CONFIG*/ {}" not in response.content  # the site's settings are written in
    assert b'"cmpId":' in response.content
    assert client.get("/consentry.css").status_code == 200


def test_a_first_visit_starts_a_device_subject_with_its_own_short_token(
    client: TestClient, container: Container
) -> None:
    first = visit(client, languages=["fr-BE", "en"])
    subject = first["subject"]
    assert subject.startswith("device-") and len(subject) == len("device-") + 32
    assert first["locale"] == "fr"
    assert first["texts"]["refuse"] == "Tout refuser"
    assert set(first["ask"]) == {
        "recs",
        "ads",
        "email",
        "sale",
        "location",
    }  # the test catalogue's consent ones
    assert TokenService(container.settings).verify(first["token"]) == subject
    assert first["expires_in"] == 3600
    again = visit(client)  # the cookie names the same device
    assert again["subject"] == subject
    client.cookies.clear()
    assert visit(client)["subject"] != subject


def with_cookie(client: TestClient, value: str) -> str:
    client.cookies.clear()
    response = client.post("/v1/storefront/visit", json={}, headers={"Cookie": f"{COOKIE}={value}"})
    assert response.status_code == 200, response.text
    subject: str = response.json()["subject"]
    return subject


def test_a_forged_or_foreign_device_cookie_starts_a_new_device(client: TestClient) -> None:
    client.cookies.clear()
    first = client.post("/v1/storefront/visit", json={})
    real, cookie = first.json()["subject"], first.cookies[COOKIE]
    assert with_cookie(client, cookie) == real
    body, mac = cookie.split(".")
    tampered = mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB")
    assert with_cookie(client, f"{body}.{tampered}") not in (real, "alice")
    assert with_cookie(client, "alice").startswith("device-")  # an account id is not a device


def test_banner_choices_are_ledger_events_naming_the_banner_shown(client: TestClient) -> None:
    v = visit(client, languages=["en"])
    sid, auth = v["subject"], bearer(v["token"])
    answer = client.post(
        f"/v1/subjects/{sid}/choices",
        json={"all": "denied", "banner": v["banner"], "locale": "en"},
        headers=auth,
    )
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["changed"]) == {"recs", "ads", "email", "sale", "location"}
    events = client.get(f"/v1/subjects/{sid}/history", headers=auth).json()["events"]
    assert {e["source"] for e in events} == {"banner"}
    assert {e["locale"] for e in events} == {"en"}
    assert {e["channel"] for e in events} == {v["banner"]}  # the banner shown
    assert visit(client)["ask"] == []  # refused: not asked again
    some = client.post(
        f"/v1/subjects/{sid}/choices", json={"set": {"recs": "granted"}}, headers=auth
    )
    assert some.json()["changed"] == ["recs"]
    signals = client.get(f"/v1/subjects/{sid}/signals", headers=auth)
    assert signals.status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"all": "denied", "set": {"recs": "denied"}}, 422),
        ({"set": {}}, 422),
        ({"all": "maybe"}, 422),
        ({"set": {"nope": "granted"}}, 404),
        ({"set": {"orders": "denied"}}, 409),  # contract: not a choice
        ({"all": "denied", "banner": "not-a-version"}, 422),
    ],
)
def test_bad_choices_get_a_problem_not_a_500(
    client: TestClient, body: dict[str, Any], status: int
) -> None:
    v = visit(client)
    response = client.post(
        f"/v1/subjects/{v['subject']}/choices", json=body, headers=bearer(v["token"])
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_device_token_cannot_read_or_write_another_subject(client: TestClient) -> None:
    mine, other = visit(client), None
    client.cookies.clear()
    other = visit(client)
    auth = bearer(mine["token"])
    for method, path, body in [
        ("POST", f"/v1/subjects/{other['subject']}/choices", {"all": "granted"}),
        ("POST", "/v1/subjects/alice/choices", {"all": "granted"}),
        ("GET", f"/v1/subjects/{other['subject']}/signals", None),
        ("PATCH", "/v1/subjects/alice/permissions", {"all": "granted"}),
    ]:
        response = client.request(method, path, json=body, headers=auth)
        assert response.status_code == 404, (path, response.text)
    assert client.post("/v1/subjects/alice/choices", json={"all": "granted"}).status_code == 401


def test_gpc_from_the_browser_is_honoured_as_sec_gpc_is(client: TestClient) -> None:
    v = visit(client, gpc=True)
    sid, auth = v["subject"], bearer(v["token"])
    assert v["gpc"] is True and "recs" in v["ask"]
    accepted = client.post(
        f"/v1/subjects/{sid}/choices", json={"all": "granted", "gpc": True}, headers=auth
    )
    assert accepted.status_code == 200, accepted.text
    perms = client.get(f"/v1/subjects/{sid}/permissions", headers=auth).json()["permissions"]
    by_id = {p["id"]: p for p in perms}
    for pid in ("sale", "ads"):  # the signal wins over Accept all
        assert by_id[pid]["state"] == "denied" and by_id[pid]["source"] == "gpc", pid
    assert by_id["recs"]["state"] == "granted"
    gpp = client.get(f"/v1/subjects/{sid}/signals", headers=auth).json()["gpp"]
    usnat = next(s for s in decode_gpp(gpp).sections if isinstance(s, UsNat))
    assert usnat.gpc is True and usnat.sale_opt_out == 1


def test_the_signals_gpc_flag_is_set_from_the_browser_before_any_choice(
    client: TestClient,
) -> None:
    v = visit(client, gpc=True)
    path, auth = f"/v1/subjects/{v['subject']}/signals", bearer(v["token"])

    def gpc_flag(params: dict[str, str]) -> bool | None:
        gpp = client.get(path, params=params, headers=auth).json()["gpp"]
        return next(s for s in decode_gpp(gpp).sections if isinstance(s, UsNat)).gpc

    assert gpc_flag({"gpc": "true"}) is True
    assert gpc_flag({}) is None


def test_signing_in_merges_the_device_and_the_merge_is_an_event_on_the_account(
    client: TestClient, container: Container
) -> None:
    v = visit(client)
    client.post(
        f"/v1/subjects/{v['subject']}/choices",
        json={"set": {"recs": "granted", "ads": "denied"}},
        headers=bearer(v["token"]),
    )
    account = TokenService(container.settings).issue("alice")
    merged = client.post("/v1/subjects/alice/merge-device", headers=bearer(account))
    assert merged.status_code == 200, merged.text
    assert {(m["id"], m["state"]) for m in merged.json()["merged"]} == {
        ("recs", "granted"),
        ("ads", "denied"),
    }
    events = client.get("/v1/subjects/alice/history", headers=bearer(account)).json()["events"]
    assert {e["source"] for e in events} == {"device_merge"}
    client.cookies.clear()
    missing = client.post("/v1/subjects/alice/merge-device", headers=bearer(account))
    assert missing.status_code == 404
    other = TokenService(container.settings).issue("bob")
    assert client.post("/v1/subjects/alice/merge-device", headers=bearer(other)).status_code == 404


@pytest.fixture
def strict_client(sqlite_url: str) -> Iterator[TestClient]:
    container = bootstrap(make_settings(sqlite_url, storefront_new_devices_per_minute=2))
    with TestClient(create_app(container), raise_server_exceptions=False) as tc:
        yield tc
    container.close()


def test_new_devices_from_one_address_are_rate_limited(strict_client: TestClient) -> None:
    strict_client.cookies.clear()
    first = strict_client.post("/v1/storefront/visit", json={})
    cookie = first.cookies[COOKIE]
    strict_client.cookies.clear()
    assert strict_client.post("/v1/storefront/visit", json={}).status_code == 200
    strict_client.cookies.clear()
    refused = strict_client.post("/v1/storefront/visit", json={})
    assert refused.status_code == 429
    assert refused.json()["retry_after"] >= 1
    # A returning device (its cookie) is not a new one: still served.
    back = strict_client.post(
        "/v1/storefront/visit", json={}, headers={"Cookie": f"{COOKIE}={cookie}"}
    )
    assert back.status_code == 200 and back.json()["subject"] == first.json()["subject"]


@pytest.fixture
def es256_client(sqlite_url: str) -> Iterator[TestClient]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = make_settings(sqlite_url, jwt_public_key=public)
    settings = settings.model_copy(update={"jwt_secret": None})
    container = bootstrap(settings)
    with TestClient(create_app(container), raise_server_exceptions=False) as tc:
        yield tc
    container.close()


def test_without_a_shared_secret_device_subjects_answer_503(es256_client: TestClient) -> None:
    response = es256_client.post("/v1/storefront/visit", json={})
    assert response.status_code == 503
    assert "CONSENTRY_JWT_SECRET" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [{"gpc": 0}, {"gpc": "yes"}, {"languages": "en"}, {"languages": ["x" * 40]}, {"other": 1}],
)
def test_a_bad_visit_body_gets_a_problem(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/v1/storefront/visit", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
