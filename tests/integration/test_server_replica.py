"""POST /v1/decisions answered from the replica inside the server: read-your-writes in one
process, other processes' writes within the bound, the database for what it cannot know."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.bootstrap import Container, bootstrap
from consentry.domain.decisions import DecisionRequest
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from sdk.live import eventually
from support import bearer, make_settings


@pytest.fixture
def service(container: Container) -> dict[str, str]:
    return bearer(container.keys.create(["decide", "subjects:read", "subjects:write"]))


@pytest.fixture
def warm(client: TestClient, container: Container, service: dict[str, str]) -> TestClient:
    """A client whose server's replica has loaded and answers decisions."""
    client.post("/v1/decisions", json=body("s0"), headers=service)
    assert container.replica.wait_ready()
    return client


def body(subject: str, purpose: str = "recommendations", **kw: Any) -> dict[str, Any]:
    return {"subject": subject, "purpose": purpose, "categories": ["behaviour.browsing"], **kw}


def ask(client: TestClient, headers: dict[str, str], **kw: Any) -> dict[str, Any]:
    response = client.post("/v1/decisions", json=body(**kw), headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_the_replica_starts_only_when_a_decision_is_asked(container: Container) -> None:
    assert container.replica.status == "idle"


def test_a_decision_right_after_a_put_reflects_it(
    warm: TestClient, container: Container, service: dict[str, str]
) -> None:
    for i in range(12):
        state = "granted" if i % 2 == 0 else "denied"
        put = warm.put(
            "/v1/subjects/s1/permissions/recs",
            json={"state": state, "notice_version": "2"},
            headers=service,
        )
        assert put.status_code == 200
        assert ask(warm, service, subject="s1")["allowed"] is (state == "granted")
    assert container.replica.ready() and container.replica.replica.seq("s1") == 12


def test_a_decision_right_after_an_erasure_reflects_it(
    warm: TestClient, service: dict[str, str]
) -> None:
    warm.put(
        "/v1/subjects/s1/permissions/recs",
        json={"state": "granted", "notice_version": "2"},
        headers=service,
    )
    assert ask(warm, service, subject="s1")["allowed"]
    assert warm.delete("/v1/subjects/s1", headers=service).status_code == 200
    assert ask(warm, service, subject="s1")["reason"] == "no_consent"


def test_writes_from_another_process_arrive_within_the_bound(
    warm: TestClient, database_url: str, service: dict[str, str]
) -> None:
    other: Container = bootstrap(make_settings(database_url), migrate=False)
    try:
        other.consents.change("s9", [Change("recs", ChoiceState.GRANTED)], Context())
        assert eventually(lambda: ask(warm, service, subject="s9")["allowed"], timeout=5)
    finally:
        other.close()


def test_device_questions_are_answered_by_the_database(
    warm: TestClient, container: Container, service: dict[str, str]
) -> None:
    warm.put(
        "/v1/subjects/s1/permissions/location",
        json={"state": "granted", "notice_version": "1"},
        headers=service,
    )
    warm.put(
        "/v1/subjects/s1/devices/phone",
        json={"platform": "android", "app_version": "1", "os_permissions": {"location": "precise"}},
        headers=service,
    )
    check = {"purpose": "delivery.location", "categories": ["device.location.precise"]}
    direct = container.replica.decide(
        DecisionRequest("s1", "delivery.location", ("device.location.precise",)),
        container.consents.clock(),
    )
    assert direct is None  # not the replica's to answer
    answer = warm.post("/v1/decisions", json={"subject": "s1", **check}, headers=service).json()
    assert answer == {"allowed": True, "reason": "consent", "permission": "location"}


def test_a_batch_mixes_replica_and_database_answers_in_order(
    warm: TestClient, service: dict[str, str]
) -> None:
    warm.put(
        "/v1/subjects/s1/permissions/recs",
        json={"state": "granted", "notice_version": "2"},
        headers=service,
    )
    checks = [
        body("s1"),
        {
            "subject": "s1",
            "purpose": "delivery.location",
            "categories": ["device.location.precise"],
        },
        body("s2"),
        {"subject": "s1", "purpose": "sale", "categories": ["behaviour.purchases"]},
    ]
    results = warm.post("/v1/decisions/batch", json={"checks": checks}, headers=service).json()
    assert [r["reason"] for r in results["results"]] == [
        "consent",
        "no_consent",
        "no_consent",
        "no_consent",
    ]


def test_jurisdiction_defaults_come_from_the_replica_and_agree_with_the_database(
    warm: TestClient, container: Container, service: dict[str, str]
) -> None:
    sale = DecisionRequest("s1", "sale", ("behaviour.purchases",))
    before = container.replica.decide(sale, container.consents.clock())
    assert before == container.decisions.decide(sale)
    assert before is not None and not before.allowed
    container.rights.set_jurisdiction("s1", "US-CA")
    after = container.replica.decide(sale, container.consents.clock())
    assert after == container.decisions.decide(sale)
    assert after is not None and after.reason == "jurisdiction_default"
    answer = ask(warm, service, subject="s1", purpose="sale", categories=["behaviour.purchases"])
    assert answer["reason"] == "jurisdiction_default"


@pytest.fixture
def closed(container: Container) -> Iterator[Container]:
    yield container
    container.replica.close()


def test_a_closed_replica_sends_every_question_to_the_database(closed: Container) -> None:
    closed.replica.close()
    request = DecisionRequest("s1", "recommendations", ("behaviour.browsing",))
    assert closed.replica.decide(request, closed.consents.clock()) is None
    assert closed.replica.status == "closed"
