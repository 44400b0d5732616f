"""Change planning (``domain.planning``) on the small test catalogue, with no database: which
events a change appends, what it projects and answers, and what it refuses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consentry.domain.catalogue import Catalogue
from consentry.domain.decisions import CatalogueIndex, Reason
from consentry.domain.errors import InvalidChange, NoticeOutdated, NotToggleable, UnknownPermission
from consentry.domain.events import GENESIS, EventKind, verify_chain
from consentry.domain.planning import (
    Change,
    Context,
    Planned,
    all_consents,
    checked,
    expiry,
    plan,
    sale_opt_out,
)
from consentry.domain.state import Choice, ChoiceState

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
GRANT, DENY = ChoiceState.GRANTED, ChoiceState.DENIED


@dataclass(frozen=True, slots=True)
class Head:
    seq: int = 0
    hash: str = GENESIS


@dataclass(frozen=True, slots=True)
class Read:
    """What a change read of the subject (``planning.Prior``)."""

    head: Head = Head()
    jurisdiction: str | None = None
    choices: Mapping[str, Choice] = field(default_factory=dict)


class Sealer:
    """Seals by wrapping (the real one encrypts with the subject's key); records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], str | None, bytes]] = []

    def __call__(
        self, options: Mapping[str, Any], channel: str | None, aad: bytes
    ) -> tuple[dict[str, Any], str | None]:
        self.calls.append((dict(options), channel, aad))
        return ({"sealed": dict(options)} if options else {}), (
            f"sealed:{channel}" if channel else None
        )


def no_sealing(
    options: Mapping[str, Any], channel: str | None, aad: bytes
) -> tuple[dict[str, Any], str | None]:
    raise AssertionError("nothing to seal")


def planned(
    index: CatalogueIndex,
    *changes: Change,
    read: Read | None = None,
    context: Context | None = None,
    sealing: Any = no_sealing,
    now: datetime = NOW,
) -> Planned:
    perms = [checked(index.permissions, c) for c in changes]
    return plan(
        "s1",
        "ref-1",
        changes,
        perms,
        context or Context(source="web", locale="fr"),
        read or Read(),
        now,
        sealing=sealing,
    )


def prior_choice(
    pid: str,
    state: ChoiceState,
    version: str,
    *,
    options: Mapping[str, Any] | None = None,
    expires_at: datetime | None = None,
) -> Choice:
    return Choice(
        pid,
        state,
        version,
        NOW - timedelta(days=3),
        "web",
        options=dict(options or {}),
        expires_at=expires_at,
        event_id="earlier",
    )


def test_a_first_grant_starts_the_chain_on_the_current_notice(mini_index: CatalogueIndex) -> None:
    p = planned(mini_index, Change("recs", GRANT))
    [event] = p.new
    assert (event.seq, event.prev_hash, event.subject_ref) == (1, GENESIS, "ref-1")
    assert event.kind is EventKind.PERMISSION_GRANTED and event.state == "granted"
    assert event.notice_version == "2"  # none given: the notice shown now
    assert (event.source, event.locale, event.channel, event.options) == ("web", "fr", None, {})
    assert event.occurred_at == NOW
    assert verify_chain(p.new) is None
    [choice] = p.projected
    assert (choice.permission_id, choice.state, choice.event_id) == ("recs", GRANT, event.event_id)
    [entry] = p.outcome.entries
    assert (entry.id, entry.state, entry.effective, entry.reason) == (
        "recs",
        "granted",
        True,
        Reason.CONSENT.value,
    )
    assert entry.event_id == event.event_id and entry.updated_at == NOW
    assert p.outcome.changed == ["recs"] and not p.outcome.replayed


def test_a_refusal_is_a_denied_event_and_nothing_is_in_effect(mini_index: CatalogueIndex) -> None:
    p = planned(mini_index, Change("ads", DENY))
    [event] = p.new
    assert event.kind is EventKind.PERMISSION_DENIED and event.state == "denied"
    [entry] = p.outcome.entries
    assert (entry.state, entry.effective, entry.reason) == ("denied", False, Reason.DENIED.value)


def test_a_withdrawal_chains_after_the_head_it_read(mini_index: CatalogueIndex) -> None:
    read = Read(Head(7, "f" * 64), choices={"recs": prior_choice("recs", GRANT, "2")})
    p = planned(mini_index, Change("recs", DENY), read=read)
    [event] = p.new
    assert (event.seq, event.prev_hash) == (8, "f" * 64)
    assert p.outcome.changed == ["recs"]
    assert p.projected[0].state is DENY and not p.outcome.entries[0].effective


def test_asking_for_what_is_already_so_appends_nothing(mini_index: CatalogueIndex) -> None:
    read = Read(Head(3, "a" * 64), choices={"recs": prior_choice("recs", GRANT, "2")})
    p = planned(mini_index, Change("recs", GRANT), read=read)
    assert p.new == [] and p.projected == [] and p.outcome.changed == []
    [entry] = p.outcome.entries  # the answer still shows where the subject stands
    assert (entry.state, entry.effective, entry.event_id) == ("granted", True, "earlier")


@pytest.mark.parametrize(
    ("before", "change"),
    [
        (prior_choice("recs", GRANT, "1"), Change("recs", GRANT)),  # now on notice "2"
        (prior_choice("recs", GRANT, "2"), Change("recs", GRANT, options={"size": "M"})),
        (
            prior_choice("recs", GRANT, "2"),
            Change("recs", GRANT, expires_at=NOW + timedelta(days=1)),
        ),
        (prior_choice("recs", GRANT, "2", expires_at=NOW), Change("recs", GRANT, expires_at=NOW)),
    ],
    ids=["other-notice", "other-options", "now-time-limited", "expired"],
)
def test_the_same_state_is_a_change_when_anything_recorded_differs(
    mini_index: CatalogueIndex, before: Choice, change: Change
) -> None:
    p = planned(mini_index, change, read=Read(choices={"recs": before}), sealing=Sealer())
    assert p.outcome.changed == ["recs"] and len(p.new) == 1


def test_a_compatible_notice_version_is_recorded_as_shown(mini_index: CatalogueIndex) -> None:
    p = planned(mini_index, Change("recs", GRANT, notice_version="1"))
    assert p.new[0].notice_version == "1"
    entry = p.outcome.entries[0]
    assert (entry.notice_version, entry.current_notice_version) == ("1", "2")


def test_a_grant_on_an_outdated_notice_is_refused_a_refusal_is_not(
    mini_index: CatalogueIndex,
) -> None:
    with pytest.raises(NoticeOutdated):
        checked(mini_index.permissions, Change("ads", GRANT, notice_version="2"))
    assert checked(mini_index.permissions, Change("ads", DENY, notice_version="2")).id == "ads"
    assert checked(mini_index.permissions, Change("ads", GRANT)).id == "ads"  # none shown


def test_only_known_toggleable_permissions_can_change(mini_index: CatalogueIndex) -> None:
    with pytest.raises(UnknownPermission):
        checked(mini_index.permissions, Change("nope", GRANT))
    for fixed in ("orders", "tax"):  # contract, legal obligation
        with pytest.raises(NotToggleable):
            checked(mini_index.permissions, Change(fixed, DENY))


def test_an_objection_to_legitimate_interest_and_its_withdrawal(
    mini_index: CatalogueIndex,
) -> None:
    assert checked(mini_index.permissions, Change("fraud", DENY)).id == "fraud"
    objected = planned(mini_index, Change("fraud", DENY))
    entry = objected.outcome.entries[0]
    assert (entry.state, entry.effective, entry.reason) == ("denied", False, "objected")
    read = Read(Head(1, objected.new[0].hash), choices={"fraud": objected.projected[0]})
    withdrawn = planned(mini_index, Change("fraud", GRANT), read=read)
    assert withdrawn.outcome.changed == ["fraud"] and withdrawn.outcome.entries[0].effective


def test_several_changes_chain_in_order_and_project_the_last_choice(
    mini_index: CatalogueIndex,
) -> None:
    p = planned(
        mini_index,
        Change("recs", GRANT),
        Change("ads", GRANT),
        Change("recs", DENY),
        Change("ads", GRANT),  # the same as the one before it in this change: nothing
    )
    assert [(e.seq, e.permission_id, e.state) for e in p.new] == [
        (1, "recs", "granted"),
        (2, "ads", "granted"),
        (3, "recs", "denied"),
    ]
    assert verify_chain(p.new) is None
    assert [(c.permission_id, c.state) for c in p.projected] == [("recs", DENY), ("ads", GRANT)]
    assert [e.id for e in p.outcome.entries] == ["recs", "ads"]
    assert p.outcome.changed == ["recs", "ads", "recs"]


def test_personal_fields_are_sealed_and_only_when_there_are_some(
    mini_index: CatalogueIndex,
) -> None:
    sealer = Sealer()
    p = planned(
        mini_index,
        Change("recs", GRANT, options={"size": "M"}),
        Change("ads", GRANT),
        sealing=sealer,
    )
    recs, ads = p.new
    assert recs.options == {"sealed": {"size": "M"}} and ads.options == {}
    assert sealer.calls == [({"size": "M"}, None, recs.event_id.encode())]
    assert p.projected[0].options == {"size": "M"}  # the projection keeps them readable
    assert p.outcome.entries[0].options == {"size": "M"}


def test_a_channel_is_sealed_on_every_event(mini_index: CatalogueIndex) -> None:
    sealer = Sealer()
    context = Context(source="banner", channel="banner-1")
    p = planned(
        mini_index, Change("recs", GRANT), Change("ads", DENY), context=context, sealing=sealer
    )
    assert [e.channel for e in p.new] == ["sealed:banner-1", "sealed:banner-1"]
    assert [aad for _, _, aad in sealer.calls] == [e.event_id.encode() for e in p.new]


def test_accept_or_refuse_all_is_every_consent_permission(mini_catalogue: Catalogue) -> None:
    consents = {"recs", "ads", "email", "sale", "location"}
    for state in (GRANT, DENY):
        changes = all_consents(mini_catalogue, state)
        assert {c.permission_id for c in changes} == consents  # not fraud (Art. 21)
        assert {(c.state, c.notice_version) for c in changes} == {(state, None)}


def test_do_not_sell_or_share_withdraws_sale_and_advertising(mini_catalogue: Catalogue) -> None:
    changes = sale_opt_out(mini_catalogue)
    assert [(c.permission_id, c.state) for c in changes] == [("ads", DENY), ("sale", DENY)]


def test_when_a_time_limited_grant_ends() -> None:
    later = NOW + timedelta(days=2)
    assert expiry(None, "once", None, NOW) == NOW + timedelta(hours=1)
    assert expiry(later, None, 30, NOW) == NOW + timedelta(days=30)  # days win over a date
    assert expiry(later, None, None, NOW) == later
    assert expiry(None, None, None, NOW) is None
    with pytest.raises(InvalidChange):
        expiry(NOW, None, None, NOW)
