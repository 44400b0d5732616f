"""Access reports: services report uses, subjects see them grouped, violations are flagged at
the time of use, old reports are purged, unused grants are reset — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.bootstrap import Container
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from support import bearer

SID = "cust-uses-1"


@pytest.fixture
def reporter(container: Container) -> dict[str, str]:
    return bearer(container.keys.create(["uses:write"], name="recommendations-service"))


@pytest.fixture
def reader(container: Container) -> dict[str, str]:
    return bearer(container.keys.create(["subjects:read", "subjects:write"]))


def use(purpose: str, category: str, **extra: Any) -> dict[str, Any]:
    return {"subject": SID, "purpose": purpose, "categories": [category], **extra}


def test_reported_uses_are_grouped_by_purpose_and_recipient(
    client: TestClient, container: Container, reporter: dict[str, str], reader: dict[str, str]
) -> None:
    container.consents.change(
        SID, [Change("recs", ChoiceState.GRANTED), Change("ads", ChoiceState.GRANTED)], Context()
    )
    body = {
        "uses": [
            use("recommendations", "behaviour.browsing"),
            use("recommendations", "behaviour.purchases"),
            use("advertising", "behaviour.browsing", recipient="adnet"),
        ]
    }
    recorded = client.post("/v1/uses", json=body, headers=reporter)
    assert recorded.json() == {"accepted": 3, "violations": 0}
    view = client.get(f"/v1/subjects/{SID}/uses", headers=reader).json()
    groups = {(g["purpose"], g["recipient"]): g for g in view["groups"]}
    assert groups[("recommendations", None)]["count"] == 2
    assert groups[("advertising", "adnet")]["count"] == 1
    assert len(view["recent"]) == 3 and view["recent"][0]["service"] == "recommendations-service"


def test_a_use_after_withdrawal_is_a_violation(
    client: TestClient, container: Container, reporter: dict[str, str], admin_key: str
) -> None:
    container.consents.change(SID, [Change("recs", ChoiceState.GRANTED)], Context())
    container.consents.change(SID, [Change("recs", ChoiceState.DENIED)], Context())
    recorded = client.post(
        "/v1/uses", json={"uses": [use("recommendations", "behaviour.browsing")]}, headers=reporter
    ).json()
    assert recorded == {"accepted": 1, "violations": 1}
    listed = client.get("/v1/admin/violations", headers=bearer(admin_key)).json()["violations"]
    assert [(v["subject"], v["reason"], v["permission"]) for v in listed] == [
        (SID, "denied", "recs")
    ]
    metrics = client.get("/metrics", headers=bearer(admin_key)).text
    assert 'consentry_use_violations_total{purpose="recommendations"} 1.0' in metrics


def test_a_use_before_withdrawal_reported_late_is_not_a_violation(
    client: TestClient, container: Container, reporter: dict[str, str]
) -> None:
    container.consents.change(SID, [Change("recs", ChoiceState.GRANTED)], Context())
    used_while_granted = datetime.now(UTC)
    container.consents.change(SID, [Change("recs", ChoiceState.DENIED)], Context())
    body = {
        "uses": [
            use("recommendations", "behaviour.browsing", used_at=used_while_granted.isoformat())
        ]
    }
    assert client.post("/v1/uses", json=body, headers=reporter).json() == {
        "accepted": 1,
        "violations": 0,
    }


def test_a_use_without_any_consent_is_a_violation(
    client: TestClient, reporter: dict[str, str]
) -> None:
    body = {"uses": [use("advertising", "behaviour.browsing", recipient="adnet")]}
    assert client.post("/v1/uses", json=body, headers=reporter).json()["violations"] == 1


def test_reporting_needs_the_uses_scope(client: TestClient, reader: dict[str, str]) -> None:
    response = client.post(
        "/v1/uses", json={"uses": [use("recommendations", "behaviour.browsing")]}, headers=reader
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"uses": []},
        {"uses": [{"subject": SID, "purpose": "recommendations", "categories": []}]},
        {"uses": [use("recommendations", "behaviour.browsing", used_at="2026-01-01T00:00:00")]},
        {"uses": [use("recommendations", "behaviour.browsing", used_at="2999-01-01T00:00:00Z")]},
    ],
)
def test_bad_use_reports_are_422(
    client: TestClient, reporter: dict[str, str], body: dict[str, Any]
) -> None:
    response = client.post("/v1/uses", json=body, headers=reporter)
    assert (
        response.status_code == 422
        and response.headers["content-type"] == "application/problem+json"
    )


def test_reports_older_than_the_retention_are_purged(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consentry.services.uses import UseReport

    now = datetime.now(UTC)
    old = UseReport(SID, "tax_records", ("behaviour.purchases",), used_at=now - timedelta(days=400))
    fresh = UseReport(
        SID, "tax_records", ("behaviour.purchases",), used_at=now - timedelta(days=10)
    )
    container.uses.record([old, fresh], service="key:test")
    assert container.uses.purge() == 1
    groups, recent = container.uses.for_subject(SID)
    assert len(recent) == 1 and recent[0].used_at > now - timedelta(days=11)


def test_unused_grants_are_reset_with_an_event(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consentry.services.uses import UseReport

    start = datetime.now(UTC)
    container.consents.change(
        SID, [Change("recs", ChoiceState.GRANTED), Change("email", ChoiceState.GRANTED)], Context()
    )
    container.consents.change("cust-uses-2", [Change("recs", ChoiceState.GRANTED)], Context())
    later = start + timedelta(days=400)
    for service in (container.consents, container.uses):
        monkeypatch.setattr(service, "clock", lambda: later)
    # cust-uses-2's recommendations were used recently: they stay.
    container.uses.record(
        [
            UseReport(
                "cust-uses-2",
                "recommendations",
                ("behaviour.browsing",),
                used_at=later - timedelta(days=5),
            )
        ],
        service="key:test",
    )
    assert container.uses.auto_reset(timedelta(days=365)) == 2
    mine = {v.id: v for v in container.queries.permissions(SID)}
    assert mine["recs"].state == "denied" and mine["recs"].source == "system"
    assert mine["recs"].options == {"reason": "auto_reset"}
    assert {v.id: v for v in container.queries.permissions("cust-uses-2")}[
        "recs"
    ].state == "granted"
    assert container.uses.auto_reset(timedelta(days=365)) == 0


def test_erasure_removes_access_reports(
    client: TestClient, container: Container, reporter: dict[str, str], reader: dict[str, str]
) -> None:
    client.post(
        "/v1/uses", json={"uses": [use("tax_records", "behaviour.purchases")]}, headers=reporter
    )
    erased = client.delete(f"/v1/subjects/{SID}", headers=reader).json()
    assert erased["removed"]["access_reports"] == 1
    assert client.get(f"/v1/subjects/{SID}/uses", headers=reader).json()["recent"] == []
