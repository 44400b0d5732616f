"""Global Privacy Control: Sec-GPC: 1 from a signed-in subject opts out of sale and sharing
(CCPA § 7025), once; /.well-known/gpc.json — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from consentry.bootstrap import Container
from consentry.domain.decisions import DecisionRequest
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.services.signals import honour_gpc
from consentry.standards import decode_gpp
from support import TEST_SECRET, bearer

GPC = {"Sec-GPC": "1"}


def subject_token(sub: str) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=10)}
    return bearer(jwt.encode(claims, TEST_SECRET, algorithm="HS256"))


def events(container: Container, sid: str) -> list[Any]:
    return container.queries.history(sid, 500).events


@pytest.fixture
def californian(container: Container) -> str:
    """A subject in California (sale allowed by default) who also granted personalised ads."""
    container.rights.set_jurisdiction("ca1", "US-CA")
    container.consents.change("ca1", [Change("ads", ChoiceState.GRANTED)], Context(source="web"))
    return "ca1"


def test_sec_gpc_1_opts_the_subject_out_of_sale_and_sharing(
    client: TestClient, container: Container, californian: str
) -> None:
    headers = {**subject_token(californian), **GPC}
    response = client.get(f"/v1/subjects/{californian}/permissions", headers=headers)
    assert response.status_code == 200, response.text
    by_id = {p["id"]: p for p in response.json()["permissions"]}
    assert by_id["sale"]["state"] == "denied" and not by_id["sale"]["effective"]
    assert by_id["ads"]["state"] == "denied" and by_id["ads"]["source"] == "gpc"
    assert by_id["recs"]["state"] == "default"  # not sale or sharing: untouched
    recorded = [e for e in events(container, californian) if e.source == "gpc"]
    assert {e.permission_id for e in recorded} == {"ads", "sale"}
    assert {e.kind.value for e in recorded} == {"permission_denied"}
    for purpose, categories in (("sale", ("behaviour.purchases",)), ("advertising", None)):
        decision = container.decisions.decide(
            DecisionRequest(californian, purpose, categories or ("behaviour.browsing",))
        )
        assert not decision.allowed


@pytest.mark.parametrize("value", ["0", "true", " 1", "1 ", "yes", ""])
def test_only_the_exact_value_1_is_a_gpc_signal(
    client: TestClient, container: Container, californian: str, value: str
) -> None:
    before = len(events(container, californian))
    headers = {**subject_token(californian), "Sec-GPC": value}
    assert client.get(f"/v1/subjects/{californian}/permissions", headers=headers).is_success
    assert len(events(container, californian)) == before


def test_a_second_gpc_request_records_nothing(
    client: TestClient, container: Container, californian: str
) -> None:
    headers = {**subject_token(californian), **GPC}
    client.get(f"/v1/subjects/{californian}/permissions", headers=headers)
    after_first = len(events(container, californian))
    client.get(f"/v1/subjects/{californian}/signals", headers=headers)
    client.get(f"/v1/subjects/{californian}/permissions", headers=headers)
    assert len(events(container, californian)) == after_first


def test_gpc_with_nothing_in_effect_writes_nothing(
    client: TestClient, container: Container
) -> None:
    headers = {**subject_token("eu1"), **GPC}
    assert client.get("/v1/subjects/eu1/permissions", headers=headers).is_success
    assert events(container, "eu1") == []


def test_gpc_from_a_service_key_or_another_subject_is_ignored(
    client: TestClient, container: Container, californian: str
) -> None:
    before = len(events(container, californian))
    service = bearer(container.keys.create(["subjects:read"]))
    client.get(f"/v1/subjects/{californian}/permissions", headers={**service, **GPC})
    other = client.get(
        f"/v1/subjects/{californian}/permissions", headers={**subject_token("s2"), **GPC}
    )
    assert other.status_code == 404
    assert len(events(container, californian)) == before
    assert events(container, "s2") == []


def test_signals_carry_the_gpc_subsection_after_gpc(
    client: TestClient, container: Container, californian: str
) -> None:
    headers = subject_token(californian)
    client.get(f"/v1/subjects/{californian}/permissions", headers={**headers, **GPC})
    body = client.get(f"/v1/subjects/{californian}/signals", headers=headers).json()
    usnat = decode_gpp(body["gpp"]).usnat
    assert usnat is not None and usnat.gpc is True
    assert (usnat.sale_opt_out, usnat.sharing_opt_out) == (1, 1)
    assert body["consent_mode"]["ad_personalization"] == "denied"


def test_the_page_helper_reports_the_signal_and_what_it_withdrew(
    container: Container, californian: str
) -> None:
    first = honour_gpc(container.consents, container.queries, californian, "1")
    assert first.requested and set(first.changed) == {"ads", "sale"}
    again = honour_gpc(container.consents, container.queries, californian, "1")
    assert again.requested and again.changed == ()
    assert not honour_gpc(container.consents, container.queries, californian, None).requested


def test_gpc_json_is_served(client: TestClient) -> None:
    response = client.get("/.well-known/gpc.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["gpc"] is True
    assert datetime.strptime(body["lastUpdate"], "%Y-%m-%d")


def test_a_request_repeating_sec_gpc_with_one_exact_1_is_a_gpc_signal(
    client: TestClient, container: Container, californian: str
) -> None:
    """GPC spec: the signal is present when a Sec-GPC header is exactly "1"; a repeated
    header ("0", then "1") still carries it."""
    (name, value) = next(iter(subject_token(californian).items()))
    headers = [(name, value), ("Sec-GPC", "0"), ("Sec-GPC", "1")]
    response = client.get(f"/v1/subjects/{californian}/permissions", headers=headers)
    assert response.status_code == 200, response.text
    by_id = {p["id"]: p for p in response.json()["permissions"]}
    assert by_id["sale"]["state"] == "denied" and by_id["ads"]["source"] == "gpc"
    signals = client.get(f"/v1/subjects/{californian}/signals", headers=headers).json()
    usnat = decode_gpp(signals["gpp"]).usnat
    assert usnat is not None and usnat.gpc is True
