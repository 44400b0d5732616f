"""verify-site's judgement: each observed request, cookie and storage write against a state."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentry.catalogue_io import load_catalogue
from consentry.domain.catalogue import Catalogue
from consentry.storefront import checks
from consentry.storefront.checks import Observation

MARKETPLACE = Path(__file__).resolve().parents[3] / "catalogues" / "marketplace.yaml"
SITE = "shop.example.com"


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return load_catalogue(MARKETPLACE)


def judge(cat: Catalogue, allowed: frozenset[str], *obs: Observation) -> list[str]:
    found = checks.judge(cat, allowed, SITE, obs, scenario="s", phase="p")
    return [v.why for v in found]


def request(url: str) -> Observation:
    return Observation("request", url, "https://shop.example.com/")


def test_without_consent_only_non_consent_permissions_are_in_effect(cat: Catalogue) -> None:
    none = checks.without_consent(cat)
    assert "orders.fulfilment" in none and "fraud.prevention" in none
    assert "analytics.product" not in none and "sharing.ad_partners" not in none


def test_a_partner_request_is_a_violation_until_a_permission_naming_it_allows(
    cat: Catalogue,
) -> None:
    tag = request("https://cdn.mesurine.example/tag.js")
    none = checks.without_consent(cat)
    assert judge(cat, none, tag) == [
        "goes to mesurine, allowed only by analytics.product, none allowed here"
    ]
    assert judge(cat, checks.only(cat, "analytics.product"), tag) == []
    assert judge(cat, checks.only(cat, "sharing.ad_partners"), tag) != []


def test_first_party_requests_and_non_http_urls_are_not_judged(cat: Catalogue) -> None:
    none = checks.without_consent(cat)
    assert judge(cat, none, request("https://shop.example.com/x.js"), request("data:,x")) == []


def test_a_third_party_domain_no_recipient_claims_is_a_violation_in_every_state(
    cat: Catalogue,
) -> None:
    stray = request("https://tracker.example.net/p.gif")
    why = judge(cat, checks.everything(cat), stray)
    assert why == ["third-party domain tracker.example.net maps to no recipient in the catalogue"]
    assert checks.unmapped_domains(cat, SITE, [stray]) == ["tracker.example.net"]


def test_cookies_and_storage_are_judged_by_the_permissions_that_declare_them(
    cat: Catalogue,
) -> None:
    none = checks.without_consent(cat)
    cookie = Observation("cookie", "_bnf_id", "https://shop.example.com/")
    storage = Observation("storage", "bnf_seen", "https://shop.example.com/")
    own = Observation("cookie", "consentry_device", "https://shop.example.com/")
    cart = Observation("cookie", "shop_cart", "https://shop.example.com/")
    stray = Observation("cookie", "_ga", "https://shop.example.com/")
    assert judge(cat, none, cookie, storage, own, cart) == [
        "belongs to sharing.ad_partners, none allowed here",
        "belongs to sharing.ad_partners, none allowed here",
    ]
    assert judge(cat, checks.everything(cat), cookie, storage, own, cart) == []
    assert judge(cat, checks.everything(cat), stray) == [
        "declared by no permission's cookies: (not shown to be essential)"
    ]


def test_accept_all_then_gpc_leaves_sale_and_sharing_off(cat: Catalogue) -> None:
    after = checks.without_sale_or_sharing(cat)
    assert "analytics.product" in after
    assert not {"sharing.ad_partners", "sale.data_buyers", "tracking.cross_app"} & after
