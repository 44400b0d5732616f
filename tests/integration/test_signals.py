"""GET /v1/subjects/{sid}/signals: TCF, GPP and Consent Mode, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from consentry.bootstrap import Container
from consentry.standards import decode_gpp, decode_tc_string, validate_tc_string
from support import TEST_SECRET, bearer

ALL_DENIED_BUT_NEEDED = {
    "ad_storage": "denied",
    "analytics_storage": "denied",
    "ad_user_data": "denied",
    "ad_personalization": "denied",
    "functionality_storage": "granted",
    "personalization_storage": "denied",
    "security_storage": "granted",
}


def subject_token(sub: str) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=10)}
    return bearer(jwt.encode(claims, TEST_SECRET, algorithm="HS256"))


@pytest.fixture
def service(container: Container) -> dict[str, str]:
    return bearer(container.keys.create(["subjects:read", "subjects:write"]))


def test_a_new_subject_gets_signals_without_any_consent(
    client: TestClient, service: dict[str, str]
) -> None:
    response = client.get("/v1/subjects/s1/signals", headers=service)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"tcf", "gpp", "consent_mode"}
    assert body["consent_mode"] == ALL_DENIED_BUT_NEEDED
    tc = decode_tc_string(body["tcf"])
    assert tc.purposes_consent == frozenset() and tc.vendor_consents == frozenset()
    assert tc.special_feature_optins == frozenset()
    assert tc.disclosed_vendors == frozenset({3001})
    gpp = decode_gpp(body["gpp"])
    assert gpp.tcfeuv2 == tc
    assert gpp.usnat is not None and gpp.usnat.gpc is None


def test_a_grant_shows_in_every_signal(client: TestClient) -> None:
    me = subject_token("s1")
    put = client.put(
        "/v1/subjects/s1/permissions/ads",
        json={"state": "granted", "notice_version": "3"},
        headers=me,
    )
    assert put.status_code == 200, put.text
    body = client.get("/v1/subjects/s1/signals", headers=me).json()
    tc = decode_tc_string(body["tcf"])
    assert tc.purposes_consent == frozenset({1, 2, 3, 4, 7})
    assert tc.vendor_consents == frozenset({3001})
    assert [i for i in validate_tc_string(tc) if i.severity == "error"] == []
    assert body["consent_mode"]["ad_user_data"] == "granted"
    assert body["consent_mode"]["analytics_storage"] == "denied"
    usnat = decode_gpp(body["gpp"]).usnat
    assert usnat is not None and usnat.targeted_advertising_opt_out == 2  # did not opt out


def test_a_withdrawal_clears_the_signals(client: TestClient) -> None:
    me = subject_token("s1")
    for state in ("granted", "denied"):
        client.put(
            "/v1/subjects/s1/permissions/ads",
            json={"state": state, "notice_version": "3"},
            headers=me,
        )
    body = client.get("/v1/subjects/s1/signals", headers=me).json()
    assert decode_tc_string(body["tcf"]).purposes_consent == frozenset()
    assert body["consent_mode"] == ALL_DENIED_BUT_NEEDED


def test_an_opt_out_jurisdiction_default_sets_no_consent_bit(
    client: TestClient, service: dict[str, str]
) -> None:
    client.put("/v1/subjects/s1", json={"jurisdiction": "US-CA"}, headers=service)
    body = client.get("/v1/subjects/s1/signals", headers=service).json()
    usnat = decode_gpp(body["gpp"]).usnat
    assert usnat is not None and usnat.sale_opt_out == 2  # sale allowed by the CA default
    assert decode_tc_string(body["tcf"]).purposes_consent == frozenset()


def test_the_consent_language_follows_the_locale(
    client: TestClient, service: dict[str, str]
) -> None:
    body = client.get("/v1/subjects/s1/signals?locale=fr", headers=service).json()
    assert decode_tc_string(body["tcf"]).consent_language == "FR"
    assert client.get("/v1/subjects/s1/signals?locale=de", headers=service).status_code == 404


def test_signals_are_private_to_the_subject_and_readers(
    client: TestClient, container: Container
) -> None:
    assert client.get("/v1/subjects/s1/signals").status_code == 401
    assert client.get("/v1/subjects/s1/signals", headers=subject_token("s2")).status_code == 404
    decider = bearer(container.keys.create(["decide"]))
    assert client.get("/v1/subjects/s1/signals", headers=decider).status_code == 403
