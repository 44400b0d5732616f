"""The storefront runtime on the demo shop, in Debian's Chromium: nothing before the choice, the
tags after Accept all, a withdrawal that stops them, the IAB APIs, Global Privacy Control, the
banner's accessibility in four languages and the merge on sign-in.

The shop's tags come from the demo partners' port as ``<partner>.localhost`` (their own origins);
every request the browser makes is recorded and every cookie read from the jar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from browser_support import Shop, chromium, running_shop
from consentry.services.tokens import TokenService
from consentry.storefront.quiet import NetworkQuiet
from consentry.storefront.texts import TEXTS

pytestmark = pytest.mark.browser

AXE = Path(__file__).parents[1] / "vendor" / "axe-core" / "axe.min.js"
ESSENTIAL = {"consentry_device"}
# Properties that make one button look more prominent than another (as the page's tests).
PROMINENCE = [
    "background-color",
    "color",
    "border-top-width",
    "border-top-style",
    "border-top-color",
    "border-radius",
    "font-family",
    "font-size",
    "font-weight",
    "font-style",
    "text-decoration-line",
    "text-transform",
    "letter-spacing",
    "padding-top",
    "padding-left",
    "box-shadow",
    "opacity",
    "cursor",
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with running_shop(tmp_path_factory.mktemp("shop")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


class Visitor:
    """A fresh browser profile on the shop, recording every request."""

    def __init__(
        self, browser: Browser, shop: Shop, *, gpc: bool = False, bypass_csp: bool = False
    ) -> None:
        self.shop = shop
        self.context = browser.new_context(base_url=shop.url, locale="en-GB", bypass_csp=bypass_csp)
        self.context.set_default_timeout(10_000)
        if gpc:
            self.context.add_init_script(
                "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', "
                "{get: () => true})"
            )
        self.requests: list[str] = []
        self.context.on("request", self._seen)
        self.network = NetworkQuiet(self.context)
        self.page: Page = self.context.new_page()

    def _seen(self, request: Request) -> None:
        self.requests.append(request.url)

    def open(self, path: str) -> None:
        self.page.goto(path)
        self.page.evaluate("() => window.consentry.ready")
        self.settle()

    def settle(self) -> None:
        """Wait until nothing has been in flight for half a second (not Playwright's
        "networkidle": an iframe the choice lets in can leave it unset for good)."""
        assert self.network.wait(self.page, 30_000), "the page's requests never settled"

    def partner_requests(self, since: int = 0) -> list[str]:
        port = f".localhost:{self.shop.partners_port}/"
        return [u for u in self.requests[since:] if port in u]

    def cookies(self) -> set[str]:
        return {c["name"] for c in self.context.cookies()}

    def storage(self) -> list[str]:
        keys: list[str] = self.page.evaluate(
            "() => Object.keys(localStorage).concat(Object.keys(sessionStorage))"
        )
        return keys

    def subject(self) -> str:
        sid: str = self.page.evaluate("() => window.consentry.subject()")
        return sid

    def click(self, action: str) -> None:
        self.page.click(f"#consentry-banner [data-action={action}]")
        expect(self.page.locator("#consentry-banner")).to_have_count(0)
        self.settle()

    def call(self, script: str) -> Any:
        return self.page.evaluate(script)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitor(browser: Browser, shop: Shop) -> Iterator[Visitor]:
    v = Visitor(browser, shop)
    yield v
    v.close()


def test_before_any_choice_nothing_reaches_a_partner_and_no_cookie_is_set(
    visitor: Visitor,
) -> None:
    visitor.open("/demo/shop/product/lamp")
    expect(visitor.page.locator("#consentry-banner")).to_be_visible()
    visitor.open("/demo/shop/")
    assert visitor.partner_requests() == []
    assert visitor.cookies() == ESSENTIAL
    assert visitor.storage() == []
    assert visitor.call("() => window.demoTags") is None  # no tag ran
    placeholder = visitor.page.locator("[data-consentry-placeholder]")
    expect(placeholder).to_have_count(0)  # the list page embeds nothing
    visitor.open("/demo/shop/product/lamp")
    expect(visitor.page.locator("[data-consentry-placeholder]")).to_be_visible()
    assert visitor.partner_requests() == []


def test_refuse_all_loads_nothing_records_the_banner_shown_and_is_not_asked_again(
    visitor: Visitor, shop: Shop
) -> None:
    visitor.open("/demo/shop/product/kettle")
    visitor.click("refuse")
    for path in ("/demo/shop/", "/demo/shop/product/lamp", "/demo/shop/checkout"):
        visitor.open(path)
        expect(visitor.page.locator("#consentry-banner")).to_have_count(0)  # not asked again
    assert visitor.partner_requests() == []
    assert visitor.cookies() == ESSENTIAL
    assert visitor.storage() == []
    subject = visitor.subject()
    assert subject.startswith("device-")
    perms = shop.permissions(subject)
    assert perms["sharing.ad_partners"]["state"] == "denied"
    assert perms["analytics.product"]["state"] == "denied"
    events = shop.history(subject)
    assert events and {e["source"] for e in events} == {"banner"}
    mode = shop.signals(subject)["consent_mode"]
    assert mode["ad_storage"] == mode["analytics_storage"] == "denied"


def test_accept_all_loads_the_tags_after_the_consent_mode_default(
    visitor: Visitor, shop: Shop
) -> None:
    visitor.open("/demo/shop/product/backpack")
    assert visitor.partner_requests() == []
    visitor.click("accept")
    visitor.page.wait_for_function("() => (window.demoTags || []).length >= 3")
    hosts = {u.split("/")[2] for u in visitor.partner_requests()}
    assert hosts == set(shop.partner_hosts().values())
    assert any("/video?product=backpack" in u for u in visitor.partner_requests())
    expect(visitor.page.locator("[data-consentry-placeholder]")).to_have_count(0)
    assert {"_msr_id", "_adl_uid", "_bnf_id"} <= visitor.cookies()
    # Consent Mode: the default (every consent type denied) came before any tag ran.
    tags = visitor.call("() => window.demoTags")
    assert {t["tag"] for t in tags} == {"mesurine", "adlytics", "bannerfield"}
    for tag in tags:
        first = tag["consent"][0]
        assert first[:2] == ["consent", "default"], tag
        assert first[2]["ad_storage"] == first[2]["analytics_storage"] == "denied"
    updates = [
        e for e in visitor.call("() => dataLayer.map(a => Array.from(a))") if e[1] == "update"
    ]
    assert updates[-1][2] == shop.signals(visitor.subject())["consent_mode"]
    assert updates[-1][2]["ad_storage"] == "granted"


def test_a_withdrawal_mid_session_stops_the_tag_and_removes_its_cookies(
    visitor: Visitor, shop: Shop
) -> None:
    visitor.open("/demo/shop/product/lamp")
    visitor.click("accept")
    visitor.page.wait_for_function("() => (window.demoTags || []).length >= 3")
    assert {"_adl_uid", "_bnf_id", "_msr_id"} <= visitor.cookies()
    assert "bnf_seen" in visitor.storage()
    visitor.page.get_by_role("link", name="Privacy choices").click()
    # Withdraw what the ad tags' cookies rest on (_adl_uid is also tracking.cross_app's).
    for pid in ("sharing.ad_partners", "tracking.cross_app"):
        perm = shop.container.catalogue.permission(pid)
        assert perm is not None
        visitor.page.get_by_label(perm.notice.title["en"], exact=True).uncheck()
    mark = len(visitor.requests)
    with visitor.page.expect_navigation():  # a tag that ran is stopped by a reload
        visitor.page.click("#consentry-banner form [type=submit]")
    visitor.page.evaluate("() => window.consentry.ready")
    visitor.settle()
    ads = [u for u in visitor.partner_requests(mark) if "mesurine" not in u]
    assert ads == []
    assert not {"_adl_uid", "_bnf_id"} & visitor.cookies()
    assert "_msr_id" in visitor.cookies()  # analytics is still allowed
    assert "bnf_seen" not in visitor.storage()
    expect(visitor.page.locator("[data-consentry-placeholder]")).to_be_visible()
    mark = len(visitor.requests)
    visitor.open("/demo/shop/product/kettle")  # the next page view
    next_page = visitor.partner_requests(mark)
    assert [u for u in next_page if "adlytics" in u or "bannerfield" in u] == []
    assert any("mesurine" in u for u in next_page)
    perms = shop.permissions(visitor.subject())
    assert perms["sharing.ad_partners"]["state"] == "denied"
    assert perms["analytics.product"]["state"] == "granted"


def test_tcfapi_and_gpp_answer_with_the_servers_strings(visitor: Visitor, shop: Shop) -> None:
    visitor.open("/demo/shop/")
    ping = visitor.call("() => new Promise(r => __tcfapi('ping', 2, d => r(d)))")
    assert ping["cmpLoaded"] is True and ping["cmpId"] == 4094 and ping["gdprApplies"] is True
    visitor.click("accept")
    signals = shop.signals(visitor.subject())
    tc = visitor.call("() => new Promise(r => __tcfapi('getTCData', 2, (d, ok) => r([d, ok])))")
    assert tc[1] is True
    assert tc[0]["tcString"] == signals["tcf"]
    assert tc[0]["vendor"]["consents"]["3101"] is True and tc[0]["purpose"]["consents"]["1"]
    assert tc[0]["eventStatus"] == "useractioncomplete"
    gpp = visitor.call("() => new Promise(r => __gpp('ping', d => r(d)))")
    assert gpp["signalStatus"] == "ready" and gpp["cmpStatus"] == "loaded"
    assert gpp["gppString"] == signals["gpp"]
    assert gpp["sectionList"] == [2, 7]
    assert visitor.call("() => new Promise(r => __gpp('hasSection', d => r(d), 'usnat'))")
    sale = "() => new Promise(r => __gpp('getField', d => r(d), 'usnat.SaleOptOut'))"
    assert visitor.call(sale) == 2  # did not opt out: sale was granted with Accept all
    section = visitor.call("() => new Promise(r => __gpp('getSection', d => r(d), 'tcfeuv2'))")
    assert 3101 in section["VendorConsents"] and section["CmpId"] == 4094
    # A cross-origin frame asks through the locator frame, as an ad in an iframe does.
    assert visitor.call("() => !!window.frames.__tcfapiLocator && !!window.frames.__gppLocator")
    visitor.open("/demo/shop/product/lamp")
    player = visitor.page.frame_locator("iframe[data-consent]").locator("#tcf")
    expect(player).to_have_text(signals["tcf"])


def test_global_privacy_control_in_the_browser_is_honoured_like_sec_gpc(
    browser: Browser, shop: Shop
) -> None:
    visitor = Visitor(browser, shop, gpc=True)
    try:
        visitor.open("/demo/shop/")
        assert visitor.call("() => window.consentry.gpc") is True
        field = "() => new Promise(r => __gpp('getField', d => r(d), 'usnat.Gpc'))"
        assert visitor.call(field) is True  # before any choice, as Sec-GPC sets it
        visitor.click("accept")  # the signal wins over Accept all, as it does on the server
        perms = shop.permissions(visitor.subject())
        for pid in ("sharing.ad_partners", "sale.data_buyers", "tracking.cross_app"):
            assert perms[pid]["state"] == "denied" and perms[pid]["source"] == "gpc", pid
        assert perms["analytics.product"]["state"] == "granted"
        assert visitor.call(field) is True
        visitor.open("/demo/shop/product/lamp")
        hosts = {u.split("/")[2].split(".")[0] for u in visitor.partner_requests()}
        assert hosts == {"mesurine"}  # analytics only: no ad tag, no video
        assert not {"_adl_uid", "_bnf_id"} & visitor.cookies()
    finally:
        visitor.close()


@pytest.mark.parametrize("locale", ["en", "fr", "nl", "de"])
def test_the_banner_has_no_axe_violation_and_equal_refuse_and_accept_buttons(
    browser: Browser, shop: Shop, locale: str
) -> None:
    visitor = Visitor(browser, shop, bypass_csp=True)  # to inject axe, a test-only script
    try:
        check_banner(visitor, locale)
    finally:
        visitor.close()


def check_banner(visitor: Visitor, locale: str) -> None:
    visitor.open(f"/demo/shop/?lang={locale}")
    banner = visitor.page.locator("#consentry-banner")
    expect(banner).to_have_attribute("lang", locale)
    words = TEXTS[locale]
    refuse = banner.get_by_role("button", name=words["refuse"], exact=True)
    accept = banner.get_by_role("button", name=words["accept"], exact=True)
    choose = banner.get_by_role("button", name=words["choose"], exact=True)
    expect(banner.get_by_role("heading", name=words["title"])).to_be_visible()
    expect(banner).to_contain_text("9")  # the number of partners
    expect(banner.get_by_role("link", name=words["link"])).to_have_attribute(
        "href", f"{visitor.shop.url}/permissions"
    )
    boxes = [b.bounding_box() for b in (refuse, accept, choose)]
    assert all(b is not None for b in boxes)
    sizes = {(round(b["width"]), round(b["height"])) for b in boxes if b is not None}
    assert len(sizes) == 1, sizes
    style = "(el, names) => names.map(n => getComputedStyle(el).getPropertyValue(n))"
    looks = [b.evaluate(style, PROMINENCE) for b in (refuse, accept, choose)]
    assert looks[0] == looks[1] == looks[2]
    choose.click()  # the second layer too
    expect(banner.get_by_role("group", name=words["legend"])).to_be_visible()
    visitor.page.add_script_tag(path=str(AXE))
    result = visitor.call(
        "() => axe.run('#consentry-banner', {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target).join(' ')))"
    )
    assert result == []


def test_sign_in_merges_the_device_choices_into_the_account(visitor: Visitor, shop: Shop) -> None:
    account = "demo-clara"  # no choice yet on her account
    before = shop.permissions(account)
    assert before["analytics.product"]["state"] == "default"
    visitor.open("/demo/shop/")
    visitor.page.click("#consentry-banner [data-action=choose]")
    visitor.page.get_by_label("Usage statistics", exact=True).check()
    visitor.page.click("#consentry-banner form [type=submit]")
    expect(visitor.page.locator("#consentry-banner")).to_have_count(0)
    visitor.page.goto("/demo/login")
    visitor.page.get_by_role("button", name="Clara Neumann").click()
    visitor.page.wait_for_url("**/account")
    after = shop.permissions(account)
    assert after["analytics.product"]["state"] == "granted"
    assert after["analytics.product"]["source"] == "device_merge"
    assert after["sharing.ad_partners"]["state"] == "denied"
    merged = [e for e in shop.history(account) if e["source"] == "device_merge"]
    assert {e["permission"] for e in merged} >= {"analytics.product", "sharing.ad_partners"}


def test_the_script_merges_the_browser_into_the_account_it_is_given(
    visitor: Visitor, shop: Shop
) -> None:
    account = "demo-dylan"  # granted marketing.push and recommendations on his account
    visitor.open("/demo/shop/")
    visitor.click("refuse")
    token = TokenService(shop.container.settings).issue(account)
    merged = visitor.call(f"() => window.consentry.merge({account!r}, {token!r})")
    states = {m["id"]: (m["state"], m["why"]) for m in merged["merged"]}
    # His account's grants came before the refusal on this browser: the refusal wins.
    assert states["recommendations.personalised"] == ("denied", "protective")
    assert shop.permissions(account)["recommendations.personalised"]["state"] == "denied"
    assert shop.permissions(account)["recommendations.personalised"]["source"] == "device_merge"
