"""The Permissions page's content, without a browser: summary, groups, recipients, history,
uses and the uses refused because the customer said no."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consentry.catalogue_io import load_catalogue
from consentry.domain.catalogue import Catalogue
from consentry.domain.events import GENESIS, Event, EventKind, seal
from consentry.domain.state import Choice, ChoiceState, DeviceReport, SubjectState
from consentry.domain.views import PermissionView, view
from consentry.services.uses import RefusedCount, UseGroup
from consentry.web.activity import access_rows, history_rows, refused_rows
from consentry.web.i18n import translator
from consentry.web.summary import summary
from consentry.web.view_model import PageModel, build_page

MARKETPLACE = Path(__file__).parents[3] / "catalogues" / "marketplace.yaml"
NOW = datetime(2026, 1, 5, 10, 3, tzinfo=UTC)
NB = "\u00a0"


@pytest.fixture(scope="module")
def market() -> Catalogue:
    return load_catalogue(MARKETPLACE)


def views(
    catalogue: Catalogue,
    choices: Mapping[str, str | tuple[str, str]] | None = None,
    jurisdiction: str | None = "BE",
) -> list[PermissionView]:
    """What ConsentService.permissions() returns for a subject with these choices."""
    made: dict[str, Choice] = {}
    for pid, spec in (choices or {}).items():
        chosen, version = spec if isinstance(spec, tuple) else (spec, "")
        perm = catalogue.permission(pid)
        assert perm is not None, pid
        made[pid] = Choice(pid, ChoiceState(chosen), version or perm.notice.version, NOW, "web")
    subject = SubjectState("s-1", jurisdiction, made)
    return [view(p, made.get(p.id), subject, NOW) for p in catalogue.permissions]


def device(platform: str = "android", **grants: str) -> DeviceReport:
    return DeviceReport("pixel-7", platform, "5.12.0", grants, NOW)


def page(
    catalogue: Catalogue,
    choices: Mapping[str, str | tuple[str, str]] | None = None,
    devices: list[DeviceReport] | None = None,
    locale: str = "en",
) -> PageModel:
    return build_page(catalogue, views(catalogue, choices), devices or [], translator(locale))


# -- the summary sentence ------------------------------------------------------------------------
SALE = {
    "en": ("your data is not sold", "your data is sold to 1 company"),
    "fr": ("vos données ne sont pas vendues", "vos données sont vendues à 1 entreprise"),
    "nl": ("uw gegevens worden niet verkocht", "uw gegevens worden verkocht aan 1 bedrijf"),
    "de": ("Ihre Daten werden nicht verkauft", "Ihre Daten werden an 1 Unternehmen verkauft"),
}


@pytest.mark.parametrize("locale", ["en", "fr", "nl", "de"])
def test_summary_says_data_is_not_sold_until_the_sale_permission_is_granted(
    market: Catalogue, locale: str
) -> None:
    not_sold, sold = SALE[locale]
    tr = translator(locale)
    before = summary(market, views(market), [], tr)
    after = summary(market, views(market, {"sale.data_buyers": "granted"}), [], tr)
    assert not_sold in before and sold not in before
    assert sold in after and not_sold not in after


@pytest.mark.parametrize("locale", ["en", "fr", "nl", "de"])
def test_summary_is_two_capitalised_sentences_in_the_page_language(
    market: Catalogue, locale: str
) -> None:
    text = summary(market, views(market), [], translator(locale))
    first, second = text.split(". ")
    assert first[0].isupper() and second[0].isupper() and text.endswith(".")
    if locale == "fr":
        assert f"{NB}; " in text  # French puts a (non-breaking) space before a semicolon


def test_summary_in_english_for_a_new_customer(market: Catalogue) -> None:
    assert summary(market, views(market), [], translator("en")) == (
        "Your location is not used; your data is not sold. "
        "Your data is not shared with partners; it stays within the EEA."
    )


def test_precise_location_counts_only_when_the_phone_allows_it(market: Catalogue) -> None:
    tr = translator("en")
    granted = views(market, {"location.precise": "granted"})
    assert summary(market, granted, [device(location="precise")], tr).startswith(
        "Only Example Marketplace B.V. uses your precise location;"
    )
    assert summary(market, granted, [device(location="approximate")], tr).startswith(
        "Your location is not used;"
    )
    assert summary(market, views(market), [device(location="precise")], tr).startswith(
        "Your location is not used;"
    )


def test_summary_counts_partners_and_recipients_outside_the_eea(market: Catalogue) -> None:
    text = summary(market, views(market, {"sharing.ad_partners": "granted"}), [], translator("en"))
    assert "You share your data with 2 partners; 1 company outside the EEA receives it." in text
    fr = summary(market, views(market, {"sharing.ad_partners": "granted"}), [], translator("fr"))
    assert f"Vous partagez vos données avec 2 partenaires{NB}; " in fr


def test_a_grant_on_an_outdated_notice_does_not_count_as_sharing(market: Catalogue) -> None:
    stale = views(market, {"sharing.ad_partners": ("granted", "2")})
    assert "not shared with partners" in summary(market, stale, [], translator("en"))


# -- groups ----------------------------------------------------------------------------------------
def test_three_groups_device_usage_and_sharing_follow_the_catalogue(market: Catalogue) -> None:
    model = page(market, devices=[device(location="precise")])
    usage = {c.id for c in model.usage}
    sharing = {c.id for c in model.sharing}
    needed = {c.id for c in model.needed}
    assert needed == {"orders.fulfilment", "tax.records"}
    assert sharing == {
        "tracking.cross_app",
        "sharing.ad_partners",
        "sale.data_buyers",
        "transfer.outside_eea",
    }
    assert {"fraud.prevention", "marketing.email", "location.precise"} <= usage
    assert usage | sharing | needed == {p.id for p in market.permissions}
    assert len(model.devices) == 1


@pytest.mark.parametrize("locale", ["en", "fr", "nl", "de"])
def test_switch_titles_are_the_catalogue_notice_titles(market: Catalogue, locale: str) -> None:
    model = page(market, locale=locale)
    for card in model.toggleable:
        perm = market.permission(card.id)
        assert perm is not None
        assert card.title == perm.notice.title[locale]
        assert card.toggleable and card.next_state in ("granted", "denied")


def test_contract_and_legal_obligation_are_listed_with_why_not_as_switches(
    market: Catalogue,
) -> None:
    model = page(market)
    reasons = {c.id: c for c in model.needed}
    assert not any(c.toggleable for c in model.needed)
    assert all(c.checked for c in model.needed)
    assert "contract" in (reasons["orders.fulfilment"].why or "")
    assert reasons["tax.records"].why == "Required by law, so it cannot be switched off."
    fr = {c.id: c for c in page(market, locale="fr").needed}
    assert fr["tax.records"].why == "Imposé par la loi, donc impossible à désactiver."
    assert all(c.id not in reasons for c in model.toggleable)


def test_legitimate_interest_is_on_until_the_customer_objects(market: Catalogue) -> None:
    def fraud(model: PageModel) -> tuple[bool, str]:
        card = next(c for c in model.usage if c.id == "fraud.prevention")
        return card.checked, card.next_state

    assert fraud(page(market)) == (True, "denied")
    assert fraud(page(market, {"fraud.prevention": "denied"})) == (False, "granted")


def test_consent_is_off_by_default_and_flips_with_a_grant(market: Catalogue) -> None:
    def email(model: PageModel) -> tuple[bool, str, str]:
        card = next(c for c in model.usage if c.id == "marketing.email")
        return card.checked, card.next_state, card.state_text

    assert email(page(market)) == (False, "granted", "Off")
    assert email(page(market, {"marketing.email": "granted"})) == (True, "denied", "On")
    # The counter counts every switch: the grant, and the two legitimate-interest uses (on
    # until objected to).
    counted = page(market, {"marketing.email": "granted"})
    assert counted.consent_on == 3
    assert counted.consent_total == len(counted.toggleable) == 21


def test_recipients_outside_the_eea_and_data_buyers_are_flagged(market: Catalogue) -> None:
    model = page(market, {"sale.data_buyers": "granted"})
    recipients = {r.id: r for r in model.recipients}
    assert recipients["adlytics"].outside_eea and recipients["straits_cloud"].outside_eea
    assert not recipients["parcelwise"].outside_eea
    assert recipients["cobalt_audience"].buys_data
    assert recipients["cobalt_audience"].receives_now
    assert recipients["cobalt_audience"].via == ("Sale of your data",)
    assert not recipients["adlytics"].receives_now
    assert recipients["straits_cloud"].country == "Singapore"
    sale = next(c for c in model.sharing if c.id == "sale.data_buyers")
    assert sale.sold and sale.outside_eea and sale.shared
    transfer = next(c for c in model.sharing if c.id == "transfer.outside_eea")
    assert transfer.outside_eea and not transfer.sold and not transfer.shared
    de = {r.id: r for r in page(market, locale="de").recipients}
    assert de["straits_cloud"].country == "Singapur"


def test_a_changed_notice_says_why_the_earlier_grant_no_longer_counts(
    market: Catalogue,
) -> None:
    model = page(market, {"sharing.ad_partners": ("granted", "2")})
    card = next(c for c in model.sharing if c.id == "sharing.ad_partners")
    assert not card.checked
    assert card.status == "notice_changed" and card.note is None  # the badge says it
    # What changed is said once, in the question at the top of the page.
    (asked,) = model.reconsent
    assert asked.id == "sharing.ad_partners" and "Bannerfield Media GmbH" in asked.change


def test_a_consent_blocked_by_the_phone_says_so(market: Catalogue) -> None:
    model = page(market, {"location.precise": "granted"}, [device(location="approximate")])
    card = next(c for c in model.usage if c.id == "location.precise")
    assert card.checked
    assert (
        card.note
        == "It also needs “Location access” on your device, which is not allowed there now."
    )


def test_device_rows_explain_state_use_and_where_to_change_it(market: Catalogue) -> None:
    ios = DeviceReport(
        "iphone-15",
        "ios",
        "5.12.0",
        {
            "location": "precise",
            "location_scope": "once",
            "photos": "limited",
            "tracking": "denied",
        },
        NOW,
    )
    model = page(market, devices=[ios, device("web", location="ask")])
    phone, browser = model.devices
    rows = {r.id: r for r in phone.rows}
    assert rows["location_scope"].value_text == "Only this time"
    assert rows["photos"].value_text == "Limited to the items you picked"
    assert rows["tracking"].value_text == "Not allowed"
    assert "Nearby pickup points" in rows["location"].used_for
    assert rows["tracking"].used_for == ("Tracking across other apps",)
    assert phone.settings_url == "app-settings:"
    assert browser.settings_url is None and browser.platform_text == "Web browser"
    assert phone.reported_at == "January 5, 2026, 10:03:00\u202fAM UTC"
    fr = page(market, devices=[ios], locale="fr").devices[0]
    assert fr.reported_at.startswith("5 janvier 2026")
    assert {r.id: r for r in fr.rows}["location_scope"].value_text == "Cette fois seulement"


def test_mini_catalogue_pages_build_in_each_of_its_locales(mini_catalogue: Catalogue) -> None:
    for locale in mini_catalogue.locales:
        model = page(mini_catalogue, locale=locale)
        assert {c.id for c in model.needed} == {"orders", "tax"}
        assert {c.id for c in model.sharing} == {"ads", "sale"}


# -- history ---------------------------------------------------------------------------------------
def _event(
    pid: str, state: str, *, source: str = "web", version: str = "1", locale: str = "fr"
) -> Event:
    return seal(
        event_id="e-1",
        subject_ref="5e" * 32,
        seq=1,
        kind=EventKind.PERMISSION_GRANTED if state == "granted" else EventKind.PERMISSION_DENIED,
        permission_id=pid,
        state=state,
        notice_version=version,
        source=source,
        occurred_at=NOW,
        prev_hash=GENESIS,
        locale=locale,
    )


def test_history_rows_say_what_changed_when_and_from_where(market: Catalogue) -> None:
    rows = history_rows(
        market,
        [
            _event("fraud.prevention", "denied", source="app"),
            _event("sale.data_buyers", "denied", source="gpc"),
        ],
        translator("en"),
    )
    assert [(r.title, r.action, r.source) for r in rows] == [
        ("Fraud protection", "Objected", "App"),
        ("Sale of your data", "Switched off", "Global Privacy Control (GPC)"),
    ]
    fr = history_rows(market, [_event("marketing.email", "granted", version="2")], translator("fr"))
    assert (fr[0].title, fr[0].action, fr[0].source) == ("Offres par e-mail", "Activé", "Site web")
    assert fr[0].when.startswith("5 janvier 2026") and fr[0].notice_version == "2"


def test_an_automatic_reset_says_so_in_the_history(market: Catalogue) -> None:
    event = seal(
        event_id="e-2",
        subject_ref="5e" * 32,
        seq=1,
        kind=EventKind.PERMISSION_DENIED,
        permission_id="marketing.email",
        state="denied",
        notice_version="2",
        source="system",
        occurred_at=NOW,
        prev_hash=GENESIS,
        options={"reason": "auto_reset"},
    )
    (row,) = history_rows(market, [event], translator("en"))
    assert (row.action, row.source) == (
        "Switched off automatically: not used for a long time",
        "Automatic",
    )


def test_reported_uses_name_purpose_recipient_and_flag_violations(market: Catalogue) -> None:
    groups = [
        UseGroup("sale", "cobalt_audience", 3, NOW, NOW, ("key:abc",), 2),
        UseGroup("recommendations", None, 1, NOW, NOW, ("key:abc",), 0),
    ]
    sold, recs = access_rows(market, groups, translator("en"))
    assert (sold.purpose, sold.recipient, sold.outside_eea) == (
        "Sale of personal data",
        "Cobalt Audience Exchange Inc",
        True,
    )
    assert sold.count_text == "Used 3 times"
    assert sold.violation_text is not None and sold.violation_text.startswith("2 of these uses")
    assert (recs.recipient, recs.count_text, recs.violation_text) == (
        "Example Marketplace B.V.",
        "Used 1 time",
        None,
    )
    (fr,) = access_rows(market, groups[:1], translator("fr"))
    assert fr.purpose == "Vente de données personnelles" and fr.count_text == "Utilisé 3 fois"


def test_who_used_my_data_names_the_switch_its_data_and_links_to_it(market: Catalogue) -> None:
    used = UseGroup(
        "advertising.personalised",
        "adlytics",
        4,
        NOW,
        NOW,
        ("key:abc",),
        0,
        permission_id="ads.personalised",
        categories=("behaviour.browsing", "behaviour.purchases"),
    )
    (row,) = access_rows(market, [used], translator("en"))
    switch = market.permission("ads.personalised")
    assert switch is not None
    assert row.purpose == market.text(switch.notice.title, "en")  # the switch's own title
    assert row.data == (
        market.text(market.categories["behaviour.browsing"].label, "en"),
        market.text(market.categories["behaviour.purchases"].label, "en"),
    )
    assert row.recipient_country == "United States" and row.switch_id == "ads.personalised"
    fraud = UseGroup("fraud_prevention", None, 1, NOW, NOW, ("k",), 0, "fraud.prevention", ())
    orders = UseGroup("order_fulfilment", None, 1, NOW, NOW, ("k",), 0, "orders.fulfilment", ())
    objectable, needed = access_rows(market, [fraud, orders], translator("en"))
    assert objectable.switch_id == "fraud.prevention"  # an objection stops it
    assert needed.switch_id is None  # a contract: nothing to switch off


def test_refused_uses_are_counted_by_the_switch_title_and_link_to_the_switch(
    market: Catalogue,
) -> None:
    ads = RefusedCount("ads.personalised", "advertising.personalised", 3, NOW)
    (row,) = refused_rows(market, [ads], views(market), translator("en"))
    assert row.text == (
        "We did not use your data for “Personalised ads in our shop” 3 times this week, "
        "because it is off."
    )
    assert row.switch_id == "ads.personalised"
    once = RefusedCount("ads.personalised", "advertising.personalised", 1, NOW)
    (de,) = refused_rows(market, [once], views(market), translator("de"))
    assert de.text.startswith("Wir haben Ihre Daten diese Woche einmal nicht für „")
    (fr,) = refused_rows(market, [ads], views(market), translator("fr"))
    assert "3 fois cette semaine" in fr.text and "désactivée" in fr.text


def test_a_refusal_of_a_switch_on_again_says_it_was_off_then(market: Catalogue) -> None:
    ads = RefusedCount("ads.personalised", "advertising.personalised", 2, NOW)
    now_on = views(market, {"ads.personalised": "granted"})
    (row,) = refused_rows(market, [ads], now_on, translator("en"))
    assert row.text.endswith("2 times this week, because it was off then.")
    (nl,) = refused_rows(market, [ads], now_on, translator("nl"))
    assert nl.text.endswith("omdat dit toen uitstond.")


def test_a_refusal_without_a_permission_is_named_by_its_purpose_without_a_link(
    market: Catalogue,
) -> None:
    unknown = RefusedCount(None, "advertising.personalised", 4, NOW)
    (row,) = refused_rows(market, [unknown], views(market), translator("en"))
    label = market.text(market.purposes["advertising.personalised"].label, "en")
    assert f"“{label}” 4 times" in row.text and row.switch_id is None
