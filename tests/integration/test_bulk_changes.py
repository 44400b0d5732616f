"""Refuse all and Accept all through the API: one event per permission whose effective state
changes, objections to legitimate interest included in a refusal, and a history that shows
exactly the events the change reported."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.bootstrap import Container
from support import bearer

SID = "bulk-1"
# The notice version of each consent permission the caller showed (the current ones).
SHOWN = {"recs": "2", "ads": "3", "email": "1", "sale": "1", "location": "1"}


@pytest.fixture
def service(container: Container) -> dict[str, str]:
    return bearer(container.keys.create(["decide", "subjects:read", "subjects:write"]))


def effective(client: TestClient, headers: dict[str, str]) -> dict[str, bool]:
    body = client.get(f"/v1/subjects/{SID}/permissions", headers=headers).json()
    return {p["id"]: p["effective"] for p in body["permissions"]}


def history(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    body = client.get(f"/v1/subjects/{SID}/history", params={"limit": 500}, headers=headers)
    return list(body.json()["events"])


def refuse_all(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.patch(
        f"/v1/subjects/{SID}/permissions", json={"all": "denied"}, headers=headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_refuse_all_writes_one_event_per_use_that_was_on_and_objects_to_legitimate_interest(
    client: TestClient, service: dict[str, str]
) -> None:
    grant = client.put(
        f"/v1/subjects/{SID}/permissions/recs",
        json={"state": "granted", "notice_version": "2"},
        headers=service,
    )
    assert grant.status_code == 200, grant.text
    before = effective(client, service)
    assert before["recs"] and before["fraud"] and not before["sale"]
    seen = {e["event_id"] for e in history(client, service)}

    refused = refuse_all(client, service)

    # Exactly the uses that were on: the grant, and legitimate interest (an objection).
    assert sorted(refused["changed"]) == ["fraud", "recs"]
    written = [e for e in history(client, service) if e["event_id"] not in seen]
    assert sorted(e["event_id"] for e in written) == sorted(refused["event_ids"])
    assert sorted((e["permission"], e["state"]) for e in written) == [
        ("fraud", "denied"),
        ("recs", "denied"),
    ]
    after = effective(client, service)
    # Only what a contract or the law requires stays on.
    assert {pid for pid, on in after.items() if on} == {"orders", "tax"}


def test_refuse_all_again_changes_nothing_and_writes_nothing(
    client: TestClient, service: dict[str, str]
) -> None:
    refuse_all(client, service)
    count = len(history(client, service))
    again = refuse_all(client, service)
    assert again["changed"] == [] and again["event_ids"] == []
    assert len(history(client, service)) == count


def test_refuse_all_in_california_refuses_the_sale_that_was_on_by_default(
    client: TestClient, service: dict[str, str]
) -> None:
    client.put(f"/v1/subjects/{SID}", json={"jurisdiction": "US-CA"}, headers=service)
    assert effective(client, service)["sale"]
    refused = refuse_all(client, service)
    assert sorted(refused["changed"]) == ["fraud", "sale"]
    assert not effective(client, service)["sale"]


def test_accept_all_grants_only_what_was_off_on_the_current_notice(
    client: TestClient, service: dict[str, str]
) -> None:
    refuse_all(client, service)
    seen = {e["event_id"] for e in history(client, service)}
    accepted = client.patch(
        f"/v1/subjects/{SID}/permissions",
        json={"all": "granted", "notice_versions": SHOWN},
        headers=service,
    ).json()
    assert sorted(accepted["changed"]) == ["ads", "email", "fraud", "location", "recs", "sale"]
    written = [e for e in history(client, service) if e["event_id"] not in seen]
    versions = {e["permission"]: e["notice_version"] for e in written}
    assert versions["recs"] == "2" and versions["ads"] == "3"
    assert all(effective(client, service).values())


def test_accept_all_without_the_notice_versions_shown_is_refused_and_writes_nothing(
    client: TestClient, service: dict[str, str]
) -> None:
    refuse_all(client, service)
    before = history(client, service)
    shown = {pid: v for pid, v in SHOWN.items() if pid != "ads"}
    refused = client.patch(
        f"/v1/subjects/{SID}/permissions",
        json={"all": "granted", "notice_versions": shown},
        headers=service,
    )
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["code"] == "notice_version_required" and problem["permission"] == "ads"
    assert problem["current_notice_version"] == "3"
    assert history(client, service) == before
