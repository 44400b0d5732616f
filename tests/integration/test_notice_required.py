"""A grant must say which notice was shown: for a consent permission, a grant without
``notice_version`` is refused with a clear problem body and writes nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from consentry.bootstrap import Container
from support import bearer

SID = "notice-1"
PROBLEM = "application/problem+json"


@pytest.fixture
def service(container: Container) -> dict[str, str]:
    return bearer(container.keys.create(["decide", "subjects:read", "subjects:write"]))


def events(client: TestClient, headers: dict[str, str]) -> list[object]:
    return list(client.get(f"/v1/subjects/{SID}/history", headers=headers).json()["events"])


def test_a_consent_grant_without_notice_version_is_422_and_names_the_current_one(
    client: TestClient, service: dict[str, str]
) -> None:
    response = client.put(
        f"/v1/subjects/{SID}/permissions/ads", json={"state": "granted"}, headers=service
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == "notice_version_required"
    assert body["permission"] == "ads" and body["current_notice_version"] == "3"
    assert "notice_version" in body["detail"]
    assert events(client, service) == []


def test_a_subject_token_grant_without_notice_version_is_422_too(
    client: TestClient, container: Container
) -> None:
    token = {"Authorization": f"Bearer {container.tokens.issue(SID)}"}
    response = client.put(
        f"/v1/subjects/{SID}/permissions/recs", json={"state": "granted"}, headers=token
    )
    assert response.status_code == 422 and response.json()["code"] == "notice_version_required"
    named = client.put(
        f"/v1/subjects/{SID}/permissions/recs",
        json={"state": "granted", "notice_version": "2"},
        headers=token,
    )
    assert named.status_code == 200 and named.json()["notice_version"] == "2"


def test_a_patch_grant_needs_the_notice_version_of_each_consent_it_grants(
    client: TestClient, service: dict[str, str]
) -> None:
    missing = client.patch(
        f"/v1/subjects/{SID}/permissions",
        json={"set": {"recs": "granted", "email": "granted"}, "notice_versions": {"recs": "2"}},
        headers=service,
    )
    assert missing.status_code == 422 and missing.json()["permission"] == "email"
    assert events(client, service) == []  # atomic: not even recs
    named = client.patch(
        f"/v1/subjects/{SID}/permissions",
        json={
            "set": {"recs": "granted", "email": "granted"},
            "notice_versions": {"recs": "2", "email": "1"},
        },
        headers=service,
    )
    assert named.status_code == 200 and sorted(named.json()["changed"]) == ["email", "recs"]


def test_refusing_and_withdrawing_an_objection_need_no_notice_version(
    client: TestClient, service: dict[str, str]
) -> None:
    url = f"/v1/subjects/{SID}/permissions"
    assert client.put(f"{url}/ads", json={"state": "denied"}, headers=service).status_code == 200
    assert client.put(f"{url}/fraud", json={"state": "denied"}, headers=service).status_code == 200
    again = client.put(f"{url}/fraud", json={"state": "granted"}, headers=service)
    assert again.status_code == 200 and again.json()["effective"]
