"""Access reports: services report uses, subjects see them grouped, violations are flagged at
the time of use, uses refrained from are counted apart, old reports are purged, unused grants are
reset — on SQLite and PostgreSQL."""

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
        {"uses": [use("recommendations", "behaviour.browsing", outcome="declined")]},
        {"uses": [use("recommendations", "behaviour.browsing", outcome=None)]},
        {"uses": [use("recommendations", "behaviour.browsing", outcome=1)]},
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


def test_a_refrained_use_is_stored_and_never_a_violation(
    client: TestClient,
    container: Container,
    reporter: dict[str, str],
    reader: dict[str, str],
    admin_key: str,
) -> None:
    container.consents.change(SID, [Change("recs", ChoiceState.DENIED)], Context())
    body = {
        "uses": [use("recommendations", "behaviour.browsing", outcome="refrained")] * 3
        + [use("advertising", "behaviour.browsing", recipient="adnet", outcome="refrained")]
    }
    assert client.post("/v1/uses", json=body, headers=reporter).json() == {
        "accepted": 4,
        "violations": 0,
    }
    assert client.get("/v1/admin/violations", headers=bearer(admin_key)).json() == {
        "violations": []
    }
    view = client.get(f"/v1/subjects/{SID}/uses", headers=reader).json()
    assert view["groups"] == [] and view["recent"] == []
    refused = {r["permission"]: (r["purpose"], r["count"]) for r in view["refused"]}
    assert refused == {"recs": ("recommendations", 3), "ads": ("advertising", 1)}
    exported = client.get(f"/v1/subjects/{SID}/export", headers=reader).json()
    assert {r["outcome"] for r in exported["access_reports"]} == {"refrained"}


def test_a_use_reported_without_outcome_is_a_use(
    client: TestClient, container: Container, reporter: dict[str, str], reader: dict[str, str]
) -> None:
    container.consents.change(SID, [Change("recs", ChoiceState.GRANTED)], Context())
    body = {"uses": [use("recommendations", "behaviour.browsing")]}
    client.post("/v1/uses", json=body, headers=reporter)
    view = client.get(f"/v1/subjects/{SID}/uses", headers=reader).json()
    assert [r["outcome"] for r in view["recent"]] == ["used"] and view["refused"] == []


def test_refraining_from_an_allowed_use_is_stored_but_not_counted_as_refused(
    client: TestClient, container: Container, reporter: dict[str, str], reader: dict[str, str]
) -> None:
    container.consents.change(SID, [Change("recs", ChoiceState.GRANTED)], Context())
    body = {"uses": [use("recommendations", "behaviour.browsing", outcome="refrained")]}
    assert client.post("/v1/uses", json=body, headers=reporter).json()["violations"] == 0
    view = client.get(f"/v1/subjects/{SID}/uses", headers=reader).json()
    assert view["refused"] == [] and view["groups"] == []
    (report,) = client.get(f"/v1/subjects/{SID}/export", headers=reader).json()["access_reports"]
    assert (report["outcome"], report["allowed_then"]) == ("refrained", True)


def test_refused_counts_cover_the_last_seven_days_only(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consentry.services.uses import UseReport

    now = datetime.now(UTC)
    monkeypatch.setattr(container.uses, "clock", lambda: now)

    def refrained(days_ago: float) -> UseReport:
        return UseReport(
            SID,
            "advertising",
            ("behaviour.browsing",),
            "adnet",
            used_at=now - timedelta(days=days_ago),
            outcome="refrained",
        )

    container.uses.record(
        [refrained(0), refrained(2.5), refrained(6.9), refrained(7.1), refrained(30)],
        service="key:test",
    )
    (counted,) = container.uses.refused(SID)
    assert (counted.permission_id, counted.purpose, counted.count) == ("ads", "advertising", 3)
    assert counted.last_at == now
    assert container.uses.refused(SID, timedelta(days=31))[0].count == 5


def test_a_refrained_use_does_not_keep_a_grant_from_resetting(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consentry.services.uses import UseReport

    container.consents.change(SID, [Change("recs", ChoiceState.GRANTED)], Context())
    later = datetime.now(UTC) + timedelta(days=400)
    for service in (container.consents, container.uses):
        monkeypatch.setattr(service, "clock", lambda: later)
    refrained = UseReport(
        SID, "recommendations", ("behaviour.browsing",), used_at=later, outcome="refrained"
    )
    container.uses.record([refrained], service="key:test")
    assert container.uses.last_used(SID, "recs") is None
    assert container.uses.auto_reset(timedelta(days=365)) == 1


def test_erasure_removes_refrained_reports_too(
    client: TestClient, container: Container, reporter: dict[str, str], reader: dict[str, str]
) -> None:
    body = {"uses": [use("advertising", "behaviour.browsing", outcome="refrained")] * 2}
    client.post("/v1/uses", json=body, headers=reporter)
    erased = client.delete(f"/v1/subjects/{SID}", headers=reader).json()
    assert erased["removed"]["access_reports"] == 2
    assert client.get(f"/v1/subjects/{SID}/uses", headers=reader).json()["refused"] == []


def test_reports_stored_before_outcomes_existed_read_as_uses(database_url: str) -> None:
    from sqlalchemy import text

    from consentry.bootstrap import open_database
    from consentry.storage import uses as use_rows
    from consentry.storage.migrate import upgrade
    from support import make_settings

    db = open_database(make_settings(database_url))
    try:
        upgrade(db, "0005_i14_erasure_checkpoints")
        with db.write_engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO uses (subject_id, purpose, categories, recipient, permission_id,"
                    " service, used_at, recorded_at, allowed, reason) VALUES (:s, 'advertising',"
                    " 'behaviour.browsing', NULL, 'ads', 'ads-service', :t, :t, :a, 'denied')"
                ),
                {"s": SID, "t": datetime(2026, 11, 30, 9, 0), "a": False},
            )
        upgrade(db)
        with db.read() as conn:
            (row,) = use_rows.for_subject(conn, SID, 10)
            flagged = use_rows.violations(conn, None, 10)
        assert row.outcome == "used" and row.violation and flagged == [row]
    finally:
        db.dispose()
