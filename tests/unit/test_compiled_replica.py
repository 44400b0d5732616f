"""The replica core: subjects in compact rows, kept current by outbox payloads, answering with
the server's decision function."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.domain.catalogue import Catalogue
from consentry.domain.decisions import Decision, DecisionRequest, Reason, decide
from consentry.domain.state import Choice, ChoiceState, SubjectState
from consentry.replica.core import Replica
from consentry.replica.rows import PyRows
from replica_support import CATALOGUE, INDEX, ROWS, new_replica

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def chain(subject: str, n: int = 1) -> str:
    """A stand-in chain reference for a subject's ``n``-th chain (the server's are random)."""
    return hashlib.sha256(f"{subject}/{n}".encode()).hexdigest()


def event(
    subject: str, seq: int, permission: str, state: str = "granted", **kw: Any
) -> dict[str, Any]:
    perm = INDEX.permissions[permission]
    return {
        "subject": subject,
        "subject_ref": kw.get("ref", chain(subject)),
        "seq": seq,
        "kind": f"permission_{state}",
        "permission": permission,
        "state": state,
        "notice_version": kw.get("notice_version", perm.notice.version),
        "expires_at": kw.get("expires_at"),
    }


@pytest.fixture(params=ROWS)
def replica(request: pytest.FixtureRequest) -> Replica:
    return new_replica(request.param)


def test_unknown_subject_gets_the_defaults(replica: Replica) -> None:
    decision = replica.check("nobody", "recommendations", ["behaviour.browsing"])
    assert decision == Decision(False, Reason.NO_CONSENT, "recs")


def test_a_grant_event_allows_and_a_withdrawal_denies(replica: Replica) -> None:
    assert replica.apply(event("s1", 1, "recs"))
    assert replica.check("s1", "recommendations", "behaviour.browsing").allowed
    assert replica.apply(event("s1", 2, "recs", "denied"))
    assert replica.check("s1", "recommendations", ("behaviour.browsing",)) == Decision(
        False, Reason.DENIED, "recs"
    )


def test_an_event_already_applied_is_ignored(replica: Replica) -> None:
    replica.apply(event("s1", 1, "recs"))
    replica.apply(event("s1", 2, "recs", "denied"))
    assert replica.apply(event("s1", 1, "recs"))  # a replay, not an error
    assert not replica.check("s1", "recommendations", "behaviour.browsing").allowed


def test_a_gap_in_a_subjects_events_is_reported_not_applied(replica: Replica) -> None:
    replica.apply(event("s1", 1, "recs"))
    assert not replica.apply(event("s1", 3, "recs", "denied"))
    assert (
        replica.seq("s1") == 1
        and replica.check("s1", "recommendations", "behaviour.browsing").allowed
    )


def test_a_time_limited_grant_lapses_at_its_time_without_an_event(replica: Replica) -> None:
    until = NOW + timedelta(hours=1)
    replica.apply(event("s1", 1, "recs", expires_at=until.isoformat()))
    before = replica.check("s1", "recommendations", "behaviour.browsing", now=NOW.timestamp())
    after = replica.check("s1", "recommendations", "behaviour.browsing", now=until.timestamp())
    assert before.allowed and after == Decision(False, Reason.EXPIRED, "recs")


def test_a_grant_on_a_materially_changed_notice_does_not_count(replica: Replica) -> None:
    replica.apply(event("s1", 1, "ads", notice_version="2"))
    assert replica.check("s1", "advertising", "behaviour.browsing") == Decision(
        False, Reason.NOTICE_CHANGED, "ads"
    )


def test_erasure_by_ledger_reference_returns_the_subject_to_defaults(replica: Replica) -> None:
    replica.apply(event("s1", 1, "recs"))
    replica.apply(event("s2", 1, "recs"))
    erased = {"kind": "subject_erased", "subject_ref": chain("s1"), "seq": 2}
    assert replica.apply(erased)
    assert not replica.check("s1", "recommendations", "behaviour.browsing").allowed
    assert replica.check("s2", "recommendations", "behaviour.browsing").allowed
    # The same id signs in again: a new chain, from seq 1, under another reference.
    assert replica.apply(event("s1", 1, "recs", ref=chain("s1", 2)))
    assert replica.check("s1", "recommendations", "behaviour.browsing").allowed
    assert replica.seq("s1") == 1


def test_a_new_chain_for_an_id_replaces_the_old_one_even_without_its_erasure_notice(
    replica: Replica,
) -> None:
    replica.apply(event("s1", 1, "recs"))
    replica.apply(event("s1", 2, "ads"))
    assert replica.apply(event("s1", 1, "email", ref=chain("s1", 2)))
    seq, _, codes = replica.state_of("s1")
    assert (seq, sorted(codes)) == (1, ["email"])
    assert replica.apply(event("s1", 2, "recs", ref=chain("s1", 2)))
    assert replica.seq("s1") == 2 and sorted(replica.state_of("s1")[2]) == ["email", "recs"]


def test_a_jurisdiction_change_moves_the_defaults(replica: Replica) -> None:
    change = {"kind": "jurisdiction_set", "subject": "s1", "jurisdiction": "US-CA"}
    replica.apply(change)
    assert replica.check("s1", "sale", "behaviour.purchases") == Decision(
        True, Reason.JURISDICTION_DEFAULT, "sale"
    )
    replica.apply({**change, "jurisdiction": "BE"})
    assert not replica.check("s1", "sale", "behaviour.purchases").allowed


def test_put_keeps_a_later_state_than_the_one_offered(replica: Replica) -> None:
    replica.apply(event("s1", 1, "recs"))
    replica.apply(event("s1", 2, "recs", "denied"))
    assert not replica.put("s1", 1, None, [("recs", "granted", "2", None)])
    assert not replica.check("s1", "recommendations", "behaviour.browsing").allowed


def test_stale_replica_fails_closed_only_for_choice_based_permissions(replica: Replica) -> None:
    replica.apply(event("s1", 1, "recs"))
    replica.fresh_until = 0.0  # long past
    assert replica.check("s1", "recommendations", "behaviour.browsing") == Decision(
        False, Reason.STALE_REPLICA, "recs"
    )
    orders = replica.check("s1", "order_fulfilment", "order.address", "carrier")
    assert orders == Decision(True, Reason.CONTRACT, "orders")
    assert replica.check("s1", "mind_reading", "x").reason is Reason.UNKNOWN_PURPOSE


def test_device_categories_are_refused_by_a_replica(replica: Replica) -> None:
    replica.apply(event("s1", 1, "location"))
    decision = replica.check("s1", "delivery.location", "device.location.precise")
    assert decision == Decision(False, Reason.DEVICE_NOT_GRANTED, "location")


def test_many_subjects_share_one_int_per_distinct_state() -> None:
    replica = new_replica(compiled_rows=False)  # the compiled rows hold no ints at all
    for i in range(100):
        replica.apply(event(f"s{i}", 1, "recs"))
    assert isinstance(replica._rows, PyRows)
    assert len(replica) == 100 and len(replica._rows.pool) == 1


# -- the replica equals the server, on random event histories -----------------------------------
_histories = st.lists(
    st.tuples(
        st.sampled_from([p.id for p in CATALOGUE.permissions if p.toggleable]),
        st.sampled_from(["granted", "denied"]),
        st.sampled_from(["1", "2", "3", "0"]),
        st.sampled_from([None, NOW - timedelta(seconds=1), NOW, NOW + timedelta(days=1)]),
    ),
    max_size=12,
)


@pytest.mark.parametrize("compiled_rows", ROWS)
@settings(max_examples=300, deadline=None)
@given(
    history=_histories,
    jurisdiction=st.sampled_from([None, "BE", "US-CA", "US"]),
    purpose=st.sampled_from(list(CATALOGUE.purposes)),
    category=st.sampled_from(list(CATALOGUE.categories)),
    recipient=st.sampled_from([None, *CATALOGUE.recipients]),
)
def test_replica_built_from_events_decides_like_the_server(
    compiled_rows: bool,
    history: list[tuple[str, str, str, datetime | None]],
    jurisdiction: str | None,
    purpose: str,
    category: str,
    recipient: str | None,
) -> None:
    replica = new_replica(compiled_rows)
    replica.set_jurisdiction("s1", jurisdiction)
    choices: dict[str, Choice] = {}
    for seq, (pid, state, version, expires) in enumerate(history, start=1):
        replica.apply(
            {
                "subject": "s1",
                "seq": seq,
                "kind": f"permission_{state}",
                "permission": pid,
                "state": state,
                "notice_version": version,
                "expires_at": expires.isoformat() if expires else None,
            }
        )
        choices[pid] = Choice(pid, ChoiceState(state), version, NOW, "api", expires_at=expires)
    subject = SubjectState("s1", jurisdiction, choices, {})
    expected = decide(INDEX, subject, DecisionRequest("s1", purpose, (category,), recipient), NOW)
    assert replica.check("s1", purpose, [category], recipient, now=NOW.timestamp()) == expected
    # The same request asked with one name, or with a tuple, is planned alike.
    assert replica.check("s1", purpose, category, recipient, now=NOW.timestamp()) == expected
    assert replica.check("s1", purpose, (category,), recipient, now=NOW.timestamp()) == expected


def test_mini_catalogue_is_what_these_tests_assume(mini_catalogue: Catalogue) -> None:
    assert [p.id for p in mini_catalogue.permissions][:3] == ["recs", "ads", "email"]
