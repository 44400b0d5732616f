"""The demo's simulated services: they ask through the SDK, use only what is allowed, report
each use under their key's name, stop when the customer withdraws, and report the uses they
refrained from."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consentry.demo.simulated import DemoService, SimulatedServices
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from sdk.live import LiveServer, eventually

SERVICES = (
    DemoService("recs-service", "recs"),
    DemoService("ad-partner-feed", "ads", "adnet"),
    DemoService("pickup-service", "location"),  # device data only: never simulated
)


@pytest.fixture
def simulated(live_server: LiveServer) -> Iterator[SimulatedServices]:
    container = live_server.container
    keys = {s.name: container.keys.create(["decide", "uses:write"], name=s.name) for s in SERVICES}
    services = SimulatedServices(
        live_server.url, container.catalogue, keys, ["cust-1", "cust-2"], SERVICES
    )
    services.connect()
    yield services
    services.stop()


def test_services_use_only_what_is_allowed_and_stop_after_a_withdrawal(
    simulated: SimulatedServices, live_server: LiveServer
) -> None:
    consents = live_server.container.consents
    assert set(simulated.uses) == {"recs-service", "ad-partner-feed"}
    consents.change("cust-1", [Change("recs", ChoiceState.GRANTED)], Context(source="web"))
    assert eventually(lambda: simulated.tick() == {"recs-service": 1, "ad-partner-feed": 0})
    simulated.flush()
    groups, recent = live_server.container.uses.for_subject("cust-1")
    assert {r.service for r in recent} == {"recs-service"}
    assert all(r.allowed for r in recent)
    assert live_server.container.uses.for_subject("cust-2") == ([], [])
    consents.change("cust-1", [Change("recs", ChoiceState.DENIED)], Context(source="web"))
    assert eventually(lambda: simulated.tick() == {"recs-service": 0, "ad-partner-feed": 0})


def test_the_partner_feed_shares_only_with_consent_to_that_recipient(
    simulated: SimulatedServices, live_server: LiveServer
) -> None:
    consents = live_server.container.consents
    consents.change("cust-2", [Change("ads", ChoiceState.GRANTED)], Context(source="web"))
    assert eventually(lambda: simulated.tick()["ad-partner-feed"] == 1)
    simulated.flush()
    _, recent = live_server.container.uses.for_subject("cust-2")
    assert {(r.service, r.recipient) for r in recent} == {("ad-partner-feed", "adnet")}


def test_services_report_the_uses_they_refrained_from_when_the_answer_is_no(
    simulated: SimulatedServices, live_server: LiveServer
) -> None:
    uses = live_server.container.uses
    live_server.container.consents.change(
        "cust-1", [Change("ads", ChoiceState.DENIED)], Context(source="web")
    )
    assert eventually(lambda: simulated.tick()["ad-partner-feed"] == 0)
    simulated.tick()
    simulated.flush()
    refused = {(r.permission_id, r.purpose): r.count for r in uses.refused("cust-1")}
    assert refused[("ads", "advertising")] == 2
    _, recent = uses.for_subject("cust-1")
    assert "ad-partner-feed" not in {r.service for r in recent}
