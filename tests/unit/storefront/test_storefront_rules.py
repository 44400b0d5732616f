"""The first-visit choice's rules: when the banner asks, and how a device merges into an account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consentry.catalogue_io import load_catalogue
from consentry.domain.catalogue import Catalogue
from consentry.domain.state import ChoiceState
from consentry.domain.views import PermissionView
from consentry.storefront import rules
from consentry.storefront.texts import TEXTS, pick_locale, texts

MARKETPLACE = Path(__file__).resolve().parents[3] / "catalogues" / "marketplace.yaml"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return load_catalogue(MARKETPLACE)


def view(
    cat: Catalogue, pid: str, state: str, at: datetime | None, version: str | None = None
) -> PermissionView:
    perm = cat.permission(pid)
    assert perm is not None
    return PermissionView(
        id=pid,
        state=state,
        effective=state == "granted",
        reason="",
        toggleable=True,
        notice_version=version or perm.notice.version,
        current_notice_version=perm.notice.version,
        updated_at=at,
    )


def all_chosen(cat: Catalogue, state: str, at: datetime) -> list[PermissionView]:
    return [view(cat, p.id, state, at) for p in rules.banner_permissions(cat)]


def test_a_visitor_who_never_chose_is_asked_about_every_consent_permission(cat: Catalogue) -> None:
    asked = rules.needs_asking(cat, [], NOW)
    assert asked == [p.id for p in rules.banner_permissions(cat)]
    assert "orders.fulfilment" not in asked  # contract: nothing to ask


def test_a_refusal_is_not_asked_again_for_twelve_months(cat: Catalogue) -> None:
    refused = all_chosen(cat, "denied", NOW - timedelta(days=364))
    assert rules.needs_asking(cat, refused, NOW) == []
    old = all_chosen(cat, "denied", NOW - timedelta(days=366))
    assert rules.needs_asking(cat, old, NOW) == [p.id for p in rules.banner_permissions(cat)]


def test_a_material_notice_change_asks_again_within_the_twelve_months(cat: Catalogue) -> None:
    views = all_chosen(cat, "denied", NOW - timedelta(days=10))
    views = [
        view(cat, v.id, "denied", v.updated_at, "2") if v.id == "sharing.ad_partners" else v
        for v in views
    ]  # sharing.ad_partners is at version 3; version 2 is not compatible
    assert rules.needs_asking(cat, views, NOW) == ["sharing.ad_partners"]


def test_a_wording_only_change_does_not_ask_again(cat: Catalogue) -> None:
    views = [
        view(cat, v.id, "granted", v.updated_at, "1") if v.id == "marketing.email" else v
        for v in all_chosen(cat, "granted", NOW - timedelta(days=10))
    ]  # marketing.email v2 accepts v1 grants
    assert rules.needs_asking(cat, views, NOW) == []


def test_the_banner_version_changes_with_its_wording_and_the_notices(cat: Catalogue) -> None:
    en = rules.banner_version(cat, texts("en", 9))
    assert en == rules.banner_version(cat, texts("en", 9))
    assert en != rules.banner_version(cat, texts("fr", 9))
    assert en.startswith("banner-") and len(en) == len("banner-") + 16


def test_the_banner_speaks_the_visitors_language_or_the_default() -> None:
    offered = ("en", "fr", "nl", "de")
    assert pick_locale(["nl-BE", "fr"], offered, "en") == "nl"
    assert pick_locale(["es-ES", "DE"], offered, "en") == "de"
    assert pick_locale(["es"], offered, "en") == "en"
    assert set(TEXTS) == set(offered)
    assert all(set(words) == set(TEXTS["en"]) for words in TEXTS.values())
    assert "9 partners" in texts("en", 9)["text"]


# -- the merge on sign-in ---------------------------------------------------------------------


def test_merge_takes_the_device_choice_where_the_account_never_chose(cat: Catalogue) -> None:
    device = [view(cat, "analytics.product", "granted", NOW)]
    account = [view(cat, "analytics.product", "default", None)]
    plan = rules.merge_plan(cat, device, account)
    assert plan == [rules.Merged("analytics.product", ChoiceState.GRANTED, "device")]


def test_merge_lets_the_more_protective_choice_win(cat: Catalogue) -> None:
    earlier, later = NOW - timedelta(days=2), NOW - timedelta(days=1)
    refused_on_device = rules.merge_plan(
        cat,
        [view(cat, "ads.personalised", "denied", later)],
        [view(cat, "ads.personalised", "granted", earlier)],
    )
    assert refused_on_device == [rules.Merged("ads.personalised", ChoiceState.DENIED, "protective")]
    granted_on_device = rules.merge_plan(
        cat,
        [view(cat, "ads.personalised", "granted", later)],
        [view(cat, "ads.personalised", "denied", earlier)],
    )
    assert granted_on_device == []  # the account's refusal stands


def test_merge_keeps_a_later_choice_made_on_the_account(cat: Catalogue) -> None:
    earlier, later = NOW - timedelta(days=2), NOW - timedelta(days=1)
    plan = rules.merge_plan(
        cat,
        [view(cat, "ads.personalised", "denied", earlier)],
        [view(cat, "ads.personalised", "granted", later)],
    )
    assert plan == []


def test_merge_ignores_what_the_device_never_chose_and_non_consent_permissions(
    cat: Catalogue,
) -> None:
    device = [
        view(cat, "analytics.product", "default", None),
        view(cat, "service.product_improvement", "denied", NOW),  # legitimate interest
    ]
    assert rules.merge_plan(cat, device, []) == []
