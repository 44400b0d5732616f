"""The customer's stored page settings over the v1 API: language and time zone, validated, on
SQLite and PostgreSQL; in the export; gone with an erasure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from consentry.bootstrap import Container
from consentry.services.preferences import Preferences
from support import TEST_SECRET, bearer

PROBLEM = "application/problem+json"
SID = "cust-prefs-odile"
URL = f"/v1/subjects/{SID}/preferences"


def own_token(sub: str = SID) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=10)}
    return bearer(jwt.encode(claims, TEST_SECRET, algorithm="HS256"))


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return dict(response.json())


def test_a_subject_without_stored_settings_reads_nulls(client: TestClient) -> None:
    answer = client.get(URL, headers=own_token())
    assert answer.status_code == 200
    assert answer.json() == {"subject": SID, "locale": None, "time_zone": None}


def test_settings_put_are_read_back_and_fields_left_out_are_kept(client: TestClient) -> None:
    put = client.put(URL, json={"locale": "fr", "time_zone": "Europe/Paris"}, headers=own_token())
    assert put.status_code == 200, put.text
    assert put.json() == {"subject": SID, "locale": "fr", "time_zone": "Europe/Paris"}
    only_zone = client.put(URL, json={"time_zone": "America/New_York"}, headers=own_token())
    assert only_zone.json()["locale"] == "fr" and only_zone.json()["time_zone"] == (
        "America/New_York"
    )
    cleared = client.put(URL, json={"locale": None}, headers=own_token())
    assert cleared.json() == {"subject": SID, "locale": None, "time_zone": "America/New_York"}
    assert client.get(URL, headers=own_token()).json() == cleared.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"time_zone": "europe/paris"}, "time_zone"),
        ({"locale": "de"}, "locale"),  # the test catalogue speaks English and French only
        ({"locale": "klingon"}, "locale"),
    ],
)
def test_an_unknown_zone_or_language_is_422_and_changes_nothing(
    client: TestClient, body: dict[str, str], field: str
) -> None:
    client.put(URL, json={"locale": "en", "time_zone": "UTC"}, headers=own_token())
    refused = problem(client.put(URL, json=body, headers=own_token()), 422)
    assert refused["code"] == "invalid_preference" and field in refused["detail"]
    assert client.get(URL, headers=own_token()).json()["locale"] == "en"


@pytest.mark.parametrize(
    "body",
    [{"lang": "fr"}, {"locale": 3}, {"time_zone": "x" * 65}, [], "fr"],
)
def test_a_malformed_body_is_422(client: TestClient, body: object) -> None:
    problem(client.put(URL, content=json.dumps(body), headers=own_token()), 422)


def test_another_subjects_token_cannot_read_or_set_them(client: TestClient) -> None:
    client.put(URL, json={"locale": "fr"}, headers=own_token())
    stranger = own_token("cust-someone-else")
    problem(client.get(URL, headers=stranger), 404)
    problem(client.put(URL, json={"locale": "en"}, headers=stranger), 404)
    problem(client.get(URL), 401)
    assert client.get(URL, headers=own_token()).json()["locale"] == "fr"


def test_a_service_key_needs_the_subject_scopes(client: TestClient, container: Container) -> None:
    reader = bearer(container.keys.create(["subjects:read"]))
    problem(client.put(URL, json={"locale": "fr"}, headers=reader), 403)
    writer = bearer(container.keys.create(["subjects:write"]))
    assert client.put(URL, json={"locale": "fr"}, headers=writer).status_code == 200
    assert client.get(URL, headers=reader).json()["locale"] == "fr"


def test_the_export_includes_the_stored_settings(client: TestClient) -> None:
    client.put(URL, json={"locale": "fr", "time_zone": "Europe/Brussels"}, headers=own_token())
    export = client.get(f"/v1/subjects/{SID}/export", headers=own_token()).json()
    assert export["preferences"] == {"locale": "fr", "time_zone": "Europe/Brussels"}


def test_erasure_deletes_the_stored_settings_and_says_so(
    client: TestClient, container: Container
) -> None:
    client.put(URL, json={"locale": "fr", "time_zone": "Europe/Brussels"}, headers=own_token())
    erased = client.delete(f"/v1/subjects/{SID}", headers=own_token())
    assert erased.status_code == 200, erased.text
    assert erased.json()["removed"]["preferences"] == 1
    assert "1 stored page setting" in erased.json()["statement"]
    assert container.preferences.get(SID) == Preferences()
    assert client.get(URL, headers=own_token()).json()["locale"] is None


def test_the_browsers_zone_is_kept_only_when_none_is_stored(container: Container) -> None:
    prefs = container.preferences
    assert prefs.first_time_zone(SID, "Asia/Tokyo").time_zone == "Asia/Tokyo"
    prefs.update(SID, time_zone="Europe/Amsterdam")
    assert prefs.first_time_zone(SID, "Asia/Tokyo").time_zone == "Europe/Amsterdam"
