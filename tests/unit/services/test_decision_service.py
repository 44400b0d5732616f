"""The decision service with no database: subjects' states held in memory, written through the
same change planning as the ledger, answered with the compiled catalogue, and checked against
the SDK's in-memory replica."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from consentry.domain.catalogue import Catalogue
from consentry.domain.decisions import CatalogueIndex, Decision, DecisionRequest, Reason
from consentry.domain.events import GENESIS, Event
from consentry.domain.planning import Change, Context, checked, plan
from consentry.domain.state import Choice, ChoiceState, DeviceReport, SubjectState
from consentry.replica.core import Replica
from consentry.services.decisions import DecisionService

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
GRANT, DENY = ChoiceState.GRANTED, ChoiceState.DENIED
RECS = ("recommendations", ("behaviour.browsing",))
ADS = ("advertising", ("behaviour.browsing",))
SALE = ("sale", ("behaviour.purchases",))
PICKUP = ("delivery.location", ("device.location.precise",))


class _Head:
    def __init__(self, events: list[Event]) -> None:
        self.seq = events[-1].seq if events else 0
        self.hash = events[-1].hash if events else GENESIS


class _Read:
    def __init__(self, state: SubjectState, events: list[Event]) -> None:
        self.head = _Head(events)
        self.jurisdiction = state.jurisdiction
        self.choices = dict(state.choices)


class LedgerInMemory:
    """Subjects' chains and states in memory, written with ``planning.plan`` as the services
    write the ledger; read as ``decisions.SubjectStates`` (the server reads the database)."""

    def __init__(self, index: CatalogueIndex) -> None:
        self.index = index
        self.subjects: dict[str, SubjectState] = {}
        self.chains: dict[str, list[Event]] = {}

    def _of(self, subject: str) -> SubjectState:
        return self.subjects.get(subject, SubjectState(subject))

    def record(self, subject: str, at: datetime, *changes: Change) -> None:
        state, chain = self._of(subject), self.chains.setdefault(subject, [])
        perms = [checked(self.index.permissions, c) for c in changes]
        planned = plan(
            subject, f"ref-{subject}", changes, perms, Context(), _Read(state, chain), at,
            sealing=lambda options, channel, aad: ({}, None),
        )  # fmt: skip
        chain.extend(planned.new)
        choices = {**state.choices, **{c.permission_id: c for c in planned.projected}}
        self.subjects[subject] = SubjectState(subject, state.jurisdiction, choices, state.devices)

    def set_jurisdiction(self, subject: str, code: str) -> None:
        state = self._of(subject)
        self.subjects[subject] = SubjectState(subject, code, state.choices, state.devices)

    def report(self, subject: str, device: str, grants: dict[str, str]) -> None:
        state = self._of(subject)
        devices = {**state.devices, device: DeviceReport(device, "ios", "5.0", grants, T0)}
        self.subjects[subject] = SubjectState(subject, state.jurisdiction, state.choices, devices)

    # -- decisions.SubjectStates -------------------------------------------------------------
    def state(self, subject_id: str) -> SubjectState:
        return self._of(subject_id)

    def states(self, subject_ids: Iterable[str]) -> dict[str, SubjectState]:
        return {s: self._of(s) for s in subject_ids}

    def state_at(
        self, subject_id: str, permission_ids: Iterable[str], moment: datetime
    ) -> SubjectState:
        now = self._of(subject_id)
        past: dict[str, Choice] = {}
        for event in self.chains.get(subject_id, []):
            if event.permission_id in permission_ids and event.occurred_at <= moment:
                past[event.permission_id] = Choice(
                    event.permission_id,
                    ChoiceState(event.state),
                    event.notice_version,
                    event.occurred_at,
                    event.source,
                    expires_at=event.expires_at,
                    event_id=event.event_id,
                )
        return SubjectState(subject_id, now.jurisdiction, past, now.devices)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ledger(mini_index: CatalogueIndex) -> LedgerInMemory:
    return LedgerInMemory(mini_index)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(days=1))


@pytest.fixture
def service(mini_index: CatalogueIndex, ledger: LedgerInMemory, clock: Clock) -> DecisionService:
    return DecisionService(mini_index, ledger, clock)


def ask(
    subject: str, use: tuple[str, tuple[str, ...]], device: str | None = None
) -> DecisionRequest:
    return DecisionRequest(subject, use[0], use[1], None, device)


def test_silence_refuses_and_a_grant_allows(
    service: DecisionService, ledger: LedgerInMemory
) -> None:
    assert service.decide(ask("s1", RECS)) == Decision(False, Reason.NO_CONSENT, "recs")
    ledger.record("s1", T0, Change("recs", GRANT))
    assert service.decide(ask("s1", RECS)) == Decision(True, Reason.CONSENT, "recs")
    ledger.record("s1", T0 + timedelta(hours=1), Change("recs", DENY))
    assert service.decide(ask("s1", RECS)) == Decision(False, Reason.DENIED, "recs")


def test_a_time_limited_grant_counts_until_the_services_clock_passes_it(
    service: DecisionService, ledger: LedgerInMemory, clock: Clock
) -> None:
    ledger.record("s1", T0, Change("ads", GRANT, expires_at=T0 + timedelta(days=2)))
    assert service.decide(ask("s1", ADS)).allowed
    clock.now = T0 + timedelta(days=3)
    assert service.decide(ask("s1", ADS)) == Decision(False, Reason.EXPIRED, "ads")


def test_many_are_answered_in_order_as_one_by_one(
    service: DecisionService, ledger: LedgerInMemory
) -> None:
    ledger.record("s1", T0, Change("recs", GRANT), Change("ads", DENY))
    ledger.record("s2", T0, Change("ads", GRANT))
    ledger.set_jurisdiction("s3", "US-CA")
    requests = [ask(s, use) for s in ("s1", "s2", "s3", "s1") for use in (RECS, ADS, SALE)]
    answers = service.decide_many(requests)
    assert answers == [service.decide(r) for r in requests]
    assert [a.allowed for a in answers[:3]] == [True, False, False]
    assert answers[8] == Decision(True, Reason.JURISDICTION_DEFAULT, "sale")  # s3, sale


def test_the_answer_at_a_past_moment_comes_from_the_choices_then(
    service: DecisionService, ledger: LedgerInMemory
) -> None:
    granted, withdrawn = T0, T0 + timedelta(hours=5)
    ledger.record("s1", granted, Change("recs", GRANT))
    ledger.record("s1", withdrawn, Change("recs", DENY))
    before = service.decide_at(ask("s1", RECS), granted - timedelta(minutes=1))
    assert before == Decision(False, Reason.NO_CONSENT, "recs")
    assert service.decide_at(ask("s1", RECS), granted + timedelta(hours=1)).allowed
    assert service.decide_at(ask("s1", RECS), withdrawn) == Decision(False, Reason.DENIED, "recs")
    assert not service.decide(ask("s1", RECS)).allowed


def test_a_grant_that_had_not_expired_then_counts_then(
    service: DecisionService, ledger: LedgerInMemory
) -> None:
    ledger.record("s1", T0, Change("ads", GRANT, expires_at=T0 + timedelta(hours=1)))
    assert service.decide_at(ask("s1", ADS), T0 + timedelta(minutes=30)).allowed
    later = service.decide_at(ask("s1", ADS), T0 + timedelta(hours=2))
    assert later == Decision(False, Reason.EXPIRED, "ads")


def test_device_data_needs_the_devices_grant(
    service: DecisionService, ledger: LedgerInMemory
) -> None:
    ledger.record("s1", T0, Change("location", GRANT))
    assert service.decide(ask("s1", PICKUP, device="phone")).reason is Reason.UNKNOWN_DEVICE
    ledger.report("s1", "phone", {"location": "approximate"})
    refused = service.decide(ask("s1", PICKUP, device="phone"))
    assert refused.reason is Reason.DEVICE_NOT_GRANTED
    ledger.report("s1", "phone", {"location": "precise"})
    assert service.decide(ask("s1", PICKUP, device="phone")).allowed


def test_the_service_and_the_sdk_replica_give_the_same_answers(
    mini_catalogue: Catalogue,
    mini_index: CatalogueIndex,
    service: DecisionService,
    ledger: LedgerInMemory,
    clock: Clock,
) -> None:
    ledger.record("s1", T0, Change("recs", GRANT, notice_version="1"), Change("ads", DENY))
    ledger.record("s2", T0, Change("ads", GRANT, expires_at=T0 + timedelta(hours=2)))
    ledger.record("s3", T0, Change("fraud", DENY), Change("sale", DENY))
    ledger.set_jurisdiction("s4", "US-CA")
    replica = Replica(mini_catalogue, compiled=mini_index.compiled)
    for subject, state in ledger.subjects.items():
        rows = [
            (c.permission_id, c.state.value, c.notice_version,
             c.expires_at.timestamp() if c.expires_at else None)
            for c in state.choices.values()
        ]  # fmt: skip
        replica.put(subject, len(ledger.chains.get(subject, [])), state.jurisdiction, rows)
    uses = [RECS, ADS, SALE, ("fraud_prevention", ("behaviour.purchases",))]
    requests = [ask(s, use) for s in ("s1", "s2", "s3", "s4", "nobody") for use in uses]
    for moment in (T0 + timedelta(hours=1), T0 + timedelta(hours=3)):
        clock.now = moment
        ours = service.decide_many(requests)
        theirs = [
            replica.check(r.subject, r.purpose, r.categories, r.recipient, moment.timestamp())
            for r in requests
        ]
        assert ours == theirs
    assert len({d.reason for d in ours}) >= 5  # the answers differ in more than one way
