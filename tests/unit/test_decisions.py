"""Every decision rule, on the small test catalogue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consentry.domain.decisions import CatalogueIndex, Decision, DecisionRequest, Reason, decide
from consentry.domain.state import Choice, ChoiceState, DeviceReport, SubjectState

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def choice(pid: str, state: str = "granted", version: str = "1", **kw: object) -> Choice:
    return Choice(
        permission_id=pid,
        state=ChoiceState(state),
        notice_version=version,
        updated_at=NOW - timedelta(days=1),
        source="web",
        **kw,  # type: ignore[arg-type]
    )


def subject(
    *choices: Choice, jurisdiction: str | None = None, **devices: dict[str, str]
) -> SubjectState:
    return SubjectState(
        "s1",
        jurisdiction,
        {c.permission_id: c for c in choices},
        {
            name: DeviceReport(name, "android", "1.0", grants, NOW)
            for name, grants in devices.items()
        },
    )


def ask(
    index: CatalogueIndex,
    state: SubjectState,
    purpose: str,
    *categories: str,
    recipient: str | None = None,
    device: str | None = None,
) -> Decision:
    request = DecisionRequest("s1", purpose, tuple(categories), recipient, device)
    return decide(index, state, request, NOW)


def test_silence_is_not_consent(mini_index: CatalogueIndex) -> None:
    d = ask(mini_index, subject(), "recommendations", "behaviour.browsing")
    assert d == Decision(False, Reason.NO_CONSENT, "recs")


def test_explicit_grant_on_current_notice_allows(mini_index: CatalogueIndex) -> None:
    d = ask(
        mini_index, subject(choice("recs", version="2")), "recommendations", "behaviour.browsing"
    )
    assert d == Decision(True, Reason.CONSENT, "recs")


def test_withdrawn_consent_denies(mini_index: CatalogueIndex) -> None:
    d = ask(
        mini_index, subject(choice("recs", "denied", "2")), "recommendations", "behaviour.browsing"
    )
    assert d == Decision(False, Reason.DENIED, "recs")


def test_expired_grant_denies(mini_index: CatalogueIndex) -> None:
    state = subject(choice("recs", version="2", expires_at=NOW - timedelta(seconds=1)))
    assert ask(mini_index, state, "recommendations", "behaviour.browsing").reason is Reason.EXPIRED


def test_a_grant_lapses_at_the_exact_moment_it_expires(mini_index: CatalogueIndex) -> None:
    at_the_moment = subject(choice("recs", version="2", expires_at=NOW))
    a_microsecond_left = subject(
        choice("recs", version="2", expires_at=NOW + timedelta(microseconds=1))
    )
    lapsed = ask(mini_index, at_the_moment, "recommendations", "behaviour.browsing")
    assert lapsed == Decision(False, Reason.EXPIRED, "recs")
    assert ask(mini_index, a_microsecond_left, "recommendations", "behaviour.browsing").allowed


def test_unexpired_time_limited_grant_allows(mini_index: CatalogueIndex) -> None:
    state = subject(choice("recs", version="2", expires_at=NOW + timedelta(hours=1)))
    assert ask(mini_index, state, "recommendations", "behaviour.browsing").allowed


def test_grant_on_materially_changed_notice_no_longer_counts(mini_index: CatalogueIndex) -> None:
    d = ask(mini_index, subject(choice("ads", version="2")), "advertising", "behaviour.browsing")
    assert d == Decision(False, Reason.NOTICE_CHANGED, "ads")


def test_grant_on_compatible_older_notice_still_counts(mini_index: CatalogueIndex) -> None:
    d = ask(
        mini_index, subject(choice("recs", version="1")), "recommendations", "behaviour.browsing"
    )
    assert d.allowed and d.reason is Reason.CONSENT


def test_legitimate_interest_allows_until_objection(mini_index: CatalogueIndex) -> None:
    before = ask(mini_index, subject(), "fraud_prevention", "behaviour.purchases")
    after = ask(
        mini_index, subject(choice("fraud", "denied")), "fraud_prevention", "behaviour.purchases"
    )
    assert before == Decision(True, Reason.LEGITIMATE_INTEREST, "fraud")
    assert after == Decision(False, Reason.OBJECTED, "fraud")


def test_contract_and_legal_obligation_allow_without_a_choice(mini_index: CatalogueIndex) -> None:
    orders = ask(mini_index, subject(), "order_fulfilment", "order.address", recipient="carrier")
    tax = ask(mini_index, subject(), "tax_records", "behaviour.purchases")
    assert orders == Decision(True, Reason.CONTRACT, "orders")
    assert tax == Decision(True, Reason.LEGAL_OBLIGATION, "tax")


def test_unknown_names_are_denied_with_their_reason(mini_index: CatalogueIndex) -> None:
    state = subject(choice("recs", version="2"))
    assert (
        ask(mini_index, state, "mind_reading", "behaviour.browsing").reason
        is Reason.UNKNOWN_PURPOSE
    )
    assert ask(mini_index, state, "recommendations", "dna").reason is Reason.UNKNOWN_CATEGORY
    unknown_recipient = ask(
        mini_index, state, "recommendations", "behaviour.browsing", recipient="someone"
    )
    assert unknown_recipient.reason is Reason.UNKNOWN_RECIPIENT
    unknown_device = ask(mini_index, state, "recommendations", "behaviour.browsing", device="tv")
    assert unknown_device.reason is Reason.UNKNOWN_DEVICE
    assert not any(d.allowed for d in (unknown_recipient, unknown_device))


def test_request_without_categories_is_denied(mini_index: CatalogueIndex) -> None:
    assert ask(mini_index, subject(), "recommendations") == Decision(False, Reason.NO_CATEGORIES)


def test_recipient_not_named_by_the_permission_is_not_covered(mini_index: CatalogueIndex) -> None:
    state = subject(choice("recs", version="2"))
    d = ask(mini_index, state, "recommendations", "behaviour.browsing", recipient="adnet")
    assert d == Decision(False, Reason.NOT_COVERED)


def test_every_category_must_be_covered(mini_index: CatalogueIndex) -> None:
    state = subject(choice("recs", version="2"))
    d = ask(mini_index, state, "recommendations", "behaviour.browsing", "profile.contact")
    assert d == Decision(False, Reason.NOT_COVERED)


def test_named_recipient_covered_by_the_grant_is_allowed(mini_index: CatalogueIndex) -> None:
    state = subject(choice("ads", version="3"))
    d = ask(mini_index, state, "advertising", "behaviour.browsing", recipient="adnet")
    assert d == Decision(True, Reason.CONSENT, "ads")


def test_opt_out_jurisdiction_default_allows_sale_until_opt_out(mini_index: CatalogueIndex) -> None:
    california = ask(mini_index, subject(jurisdiction="US-CA"), "sale", "behaviour.purchases")
    opted_out = ask(
        mini_index,
        subject(choice("sale", "denied"), jurisdiction="US-CA"),
        "sale",
        "behaviour.purchases",
    )
    assert california == Decision(True, Reason.JURISDICTION_DEFAULT, "sale")
    assert opted_out == Decision(False, Reason.DENIED, "sale")


def test_eea_and_unknown_jurisdictions_are_opt_in(mini_index: CatalogueIndex) -> None:
    for jurisdiction in ("BE", "FR", "GB", None, "JP"):
        d = ask(mini_index, subject(jurisdiction=jurisdiction), "sale", "behaviour.purchases")
        assert d == Decision(False, Reason.NO_CONSENT, "sale"), jurisdiction


def test_device_data_needs_the_os_grant_too(mini_index: CatalogueIndex) -> None:
    granted = choice("location")
    no_device = ask(mini_index, subject(granted), "delivery.location", "device.location.precise")
    precise = ask(
        mini_index,
        subject(granted, phone={"location": "precise"}),
        "delivery.location",
        "device.location.precise",
    )
    assert no_device == Decision(False, Reason.DEVICE_NOT_GRANTED, "location")
    assert precise == Decision(True, Reason.CONSENT, "location")


def test_approximate_os_grant_allows_only_approximate_location(mini_index: CatalogueIndex) -> None:
    state = subject(choice("location"), phone={"location": "approximate"})
    assert not ask(mini_index, state, "delivery.location", "device.location.precise").allowed
    assert ask(mini_index, state, "delivery.location", "device.location.approximate").allowed


def test_os_grant_without_consent_is_not_enough(mini_index: CatalogueIndex) -> None:
    state = subject(phone={"location": "precise"})
    d = ask(mini_index, state, "delivery.location", "device.location.precise")
    assert d == Decision(False, Reason.NO_CONSENT, "location")


def test_named_device_must_itself_grant(mini_index: CatalogueIndex) -> None:
    state = subject(
        choice("location"), phone={"location": "precise"}, tablet={"location": "denied"}
    )
    on_tablet = ask(
        mini_index, state, "delivery.location", "device.location.precise", device="tablet"
    )
    on_phone = ask(
        mini_index, state, "delivery.location", "device.location.precise", device="phone"
    )
    assert on_tablet.reason is Reason.DEVICE_NOT_GRANTED
    assert on_phone.allowed
