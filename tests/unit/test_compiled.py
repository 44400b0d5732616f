"""The compiled decision path equals the rule as first written, on random states and requests.

``reference_decide`` below is the decision function as it was before the catalogue was compiled
to bits: a plain reading of the rules, kept here as the oracle. Hypothesis draws subjects
(choices on any notice version, expiries around ``now``, jurisdictions, device reports) and
requests (known and unknown names) against the mini and the marketplace catalogues.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.catalogue_io import DEFAULT_CATALOGUE, load_catalogue
from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.compiled import CompiledCatalogue, decide_state
from consentry.domain.decisions import (
    CatalogueIndex,
    Decision,
    DecisionRequest,
    Reason,
    decide,
    evaluate,
)
from consentry.domain.rules import Code
from consentry.domain.state import Choice, ChoiceState, DeviceReport, SubjectState
from support import MINI

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
JURISDICTIONS = [None, "BE", "FR", "NL", "US", "US-CA", "US-NY", "GB", "UK", "EU", "EEA", "JP"]


# -- the oracle: the rule as first written -----------------------------------------------------
def _reference_device_allows(
    index: CatalogueIndex, state: SubjectState, category: str, device: str | None
) -> bool:
    need = index.device_requirements.get(category)
    if need is None:
        return True
    if device is not None:
        reports = [state.devices[device]] if device in state.devices else []
    else:
        reports = list(state.devices.values())
    return any(r.os_permissions.get(need.permission) in need.allows for r in reports)


def _reference_cover(
    candidates: Sequence[Permission], state: SubjectState, category: str, now: datetime
) -> Decision:
    refusal: Decision | None = None
    for perm in candidates:
        if category not in perm.categories:
            continue
        result = evaluate(perm, state.choices.get(perm.id), state.jurisdiction, now)
        if result.allowed:
            return Decision(True, result.reason, perm.id)
        refusal = refusal or Decision(False, result.reason, perm.id)
    return refusal or Decision(False, Reason.NOT_COVERED)


def reference_decide(
    index: CatalogueIndex, state: SubjectState, request: DecisionRequest, now: datetime
) -> Decision:
    catalogue = index.catalogue
    if request.purpose not in catalogue.purposes:
        return Decision(False, Reason.UNKNOWN_PURPOSE)
    if not request.categories:
        return Decision(False, Reason.NO_CATEGORIES)
    for category in request.categories:
        if category not in catalogue.categories:
            return Decision(False, Reason.UNKNOWN_CATEGORY)
    if request.recipient is not None and request.recipient not in catalogue.recipients:
        return Decision(False, Reason.UNKNOWN_RECIPIENT)
    if request.device is not None and request.device not in state.devices:
        return Decision(False, Reason.UNKNOWN_DEVICE)
    candidates = [
        p
        for p in index.by_purpose.get(request.purpose, ())
        if request.recipient is None or request.recipient in p.recipients
    ]
    first: Decision | None = None
    for category in request.categories:
        verdict = _reference_cover(candidates, state, category, now)
        if not verdict.allowed:
            return verdict
        if not _reference_device_allows(index, state, category, request.device):
            return Decision(False, Reason.DEVICE_NOT_GRANTED, verdict.permission)
        first = first or verdict
    assert first is not None
    return first


# -- strategies ------------------------------------------------------------------------------
def _choices(catalogue: Catalogue) -> st.SearchStrategy[dict[str, Choice]]:
    def one(perm: Permission) -> st.SearchStrategy[Choice]:
        versions = [perm.notice.version, *perm.notice.compatible_versions, "0", "99"]
        return st.builds(
            Choice,
            permission_id=st.just(perm.id),
            state=st.sampled_from(ChoiceState),
            notice_version=st.sampled_from(versions),
            updated_at=st.just(NOW - timedelta(days=1)),
            source=st.just("web"),
            expires_at=st.one_of(
                st.none(),
                st.sampled_from([NOW, NOW - timedelta(seconds=1), NOW + timedelta(days=1)]),
            ),
        )

    return st.lists(
        st.sampled_from(catalogue.permissions).flatmap(one), max_size=len(catalogue.permissions)
    ).map(lambda cs: {c.permission_id: c for c in cs})


def _devices(catalogue: Catalogue) -> st.SearchStrategy[dict[str, DeviceReport]]:
    grants = st.dictionaries(
        st.sampled_from([d.id for d in catalogue.device_permissions] or ["location"]),
        st.sampled_from(sorted({v for d in catalogue.device_permissions for v in d.values})),
        max_size=3,
    )
    report = st.builds(
        DeviceReport,
        device_id=st.sampled_from(["phone", "tablet"]),
        platform=st.just("android"),
        app_version=st.just("1.0"),
        os_permissions=grants,
        updated_at=st.just(NOW),
    )
    return st.lists(report, max_size=2).map(lambda rs: {r.device_id: r for r in rs})


def _states(catalogue: Catalogue) -> st.SearchStrategy[SubjectState]:
    return st.builds(
        SubjectState,
        subject_id=st.just("s1"),
        jurisdiction=st.sampled_from(JURISDICTIONS),
        choices=_choices(catalogue),
        devices=_devices(catalogue),
    )


def _requests(catalogue: Catalogue) -> st.SearchStrategy[DecisionRequest]:
    # Mostly requests a permission covers, so the interesting paths are drawn often.
    def covered(perm: Permission) -> st.SearchStrategy[DecisionRequest]:
        return st.builds(
            DecisionRequest,
            subject=st.just("s1"),
            purpose=st.just(perm.purpose),
            categories=st.lists(st.sampled_from(perm.categories), min_size=1, max_size=3).map(
                tuple
            ),
            recipient=st.one_of(st.none(), st.sampled_from(perm.recipients)),
            device=st.sampled_from([None, None, "phone", "tv"]),
        )

    anything = st.builds(
        DecisionRequest,
        subject=st.just("s1"),
        purpose=st.sampled_from([*catalogue.purposes, "mind_reading"]),
        categories=st.lists(
            st.sampled_from([*catalogue.categories, "dna"]), min_size=0, max_size=3
        ).map(tuple),
        recipient=st.one_of(st.none(), st.sampled_from([*catalogue.recipients, "someone"])),
        device=st.sampled_from([None, "phone", "tv"]),
    )
    return st.one_of(st.sampled_from(catalogue.permissions).flatmap(covered), anything)


MINI_INDEX = CatalogueIndex(load_catalogue(MINI))
MARKET_INDEX = CatalogueIndex(load_catalogue(DEFAULT_CATALOGUE))


@settings(max_examples=600, deadline=None)
@given(state=_states(MINI_INDEX.catalogue), request=_requests(MINI_INDEX.catalogue))
def test_compiled_decide_equals_reference_on_mini_catalogue(
    state: SubjectState, request: DecisionRequest
) -> None:
    expected = reference_decide(MINI_INDEX, state, request, NOW)
    assert decide(MINI_INDEX, state, request, NOW) == expected


@settings(max_examples=600, deadline=None)
@given(state=_states(MARKET_INDEX.catalogue), request=_requests(MARKET_INDEX.catalogue))
def test_compiled_decide_equals_reference_on_marketplace_catalogue(
    state: SubjectState, request: DecisionRequest
) -> None:
    expected = reference_decide(MARKET_INDEX, state, request, NOW)
    assert decide(MARKET_INDEX, state, request, NOW) == expected


@settings(max_examples=300, deadline=None)
@given(state=_states(MARKET_INDEX.catalogue), request=_requests(MARKET_INDEX.catalogue))
def test_stored_codes_with_expiry_resolved_later_equal_reference(
    state: SubjectState, request: DecisionRequest
) -> None:
    """What a replica keeps (codes without time, expiries aside) decides like the server."""
    if request.device is not None:
        return  # replicas know no device reports
    compiled = MARKET_INDEX.compiled
    no_devices = SubjectState(state.subject_id, state.jurisdiction, state.choices, {})
    codes = []
    expired = 0
    for pid, choice in state.choices.items():
        bit = compiled.bit[pid]
        codes.append((bit, compiled.static_code(bit, choice.state, choice.notice_version)))
        if choice.state is ChoiceState.GRANTED and choice.expired(NOW):
            expired |= 1 << bit
    stored = compiled.pack(codes, compiled.jurisdiction_id(state.jurisdiction), True)
    plan = compiled.plan(request.purpose, request.categories, request.recipient)
    expected = reference_decide(MARKET_INDEX, no_devices, request, NOW)
    if isinstance(plan, Decision):
        assert plan == expected
    else:
        assert decide_state(compiled, plan, compiled.expire(stored, expired)) == expected


def test_permission_bits_follow_catalogue_order(mini_catalogue: Catalogue) -> None:
    compiled = CompiledCatalogue(mini_catalogue)
    assert compiled.permission_ids == tuple(p.id for p in mini_catalogue.permissions)
    assert compiled.bit["recs"] == 0 and compiled.size == len(mini_catalogue.permissions)


def test_packed_state_round_trips_its_codes(mini_catalogue: Catalogue) -> None:
    compiled = CompiledCatalogue(mini_catalogue)
    codes = {0: Code.GRANTED, 1: Code.STALE, 2: Code.DENIED}
    state = compiled.pack(codes.items(), compiled.jurisdiction_id("US-CA"))
    assert compiled.codes(state) == codes
    assert compiled.jurisdiction(state) == "US-CA"


def test_jurisdiction_default_is_compiled_per_jurisdiction(mini_catalogue: Catalogue) -> None:
    compiled = CompiledCatalogue(mini_catalogue)
    plan = compiled.plan("sale", ("behaviour.purchases",), None)
    assert not isinstance(plan, Decision)
    california = compiled.pack([], compiled.jurisdiction_id("US-CA"))
    belgium = compiled.pack([], compiled.jurisdiction_id("BE"))
    assert decide_state(compiled, plan, california) == Decision(
        True, Reason.JURISDICTION_DEFAULT, "sale"
    )
    assert decide_state(compiled, plan, belgium) == Decision(False, Reason.NO_CONSENT, "sale")


def test_device_categories_without_a_report_are_refused(mini_catalogue: Catalogue) -> None:
    compiled = CompiledCatalogue(mini_catalogue)
    plan = compiled.plan("delivery.location", ("device.location.precise",), None)
    assert not isinstance(plan, Decision) and plan.any_device
    granted = compiled.pack([(compiled.bit["location"], Code.GRANTED)])
    assert decide_state(compiled, plan, granted) == Decision(
        False, Reason.DEVICE_NOT_GRANTED, "location"
    )


@pytest.mark.parametrize("count", [0, 1, 3])
def test_plans_are_cached_per_request_shape(mini_catalogue: Catalogue, count: int) -> None:
    compiled = CompiledCatalogue(mini_catalogue)
    categories = ("behaviour.browsing",) * count
    assert compiled.plan("recommendations", categories, None) is compiled.plan(
        "recommendations", categories, None
    )
