"""The Permissions page in a real browser (Debian's Chromium through Playwright).

One server (uvicorn in a thread, SQLite file, the demo catalogue, demo customers) and one browser
for the module. Every check goes through the page as a customer would (click, keyboard, no
JavaScript, a 360 px phone) and then asks the v1 API whether the change really landed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Locator, Page, expect

from browser_support import chromium, demo_server
from consentry.bootstrap import Container
from consentry.demo.customers import DEMO_CUSTOMERS
from consentry.domain.decisions import CatalogueIndex
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.events.embedded import relay_config
from consentry.events.publisher import FeedPublisher
from consentry.events.relay import Relay, build_relay
from consentry.services.consents import ConsentService
from consentry.services.receipt_signing import load_receipt_keys, verify_receipt_file
from consentry.services.uses import UseReport
from webhook_receiver import SECRET, SECRET_ENV, Receiver, receiving

pytestmark = pytest.mark.browser

MARKETPLACE = Path(__file__).parents[2] / "catalogues" / "marketplace.yaml"
BUYER = "cobalt_audience"  # the recipient of sale.data_buyers, given a webhook here
SCREENSHOT = Path("/tmp/permissions-page.png")
SCREENSHOT_360 = Path("/tmp/permissions-page-360.png")
# Properties that make one button look more prominent than another.
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
    "outline-style",
    "cursor",
]


def customer(subject_id: str) -> str:
    return next(c.name for c in DEMO_CUSTOMERS if c.subject_id == subject_id)


@dataclass
class Live:
    url: str
    container: Container
    api: httpx.Client
    receiver: Receiver

    def catalog(self, locale: str) -> list[dict[str, Any]]:
        response = self.api.get("/v1/catalog", params={"locale": locale})
        response.raise_for_status()
        return list(response.json()["permissions"])

    def effective(self, subject: str) -> dict[str, bool]:
        response = self.api.get(f"/v1/subjects/{subject}/permissions")
        response.raise_for_status()
        return {p["id"]: p["effective"] for p in response.json()["permissions"]}


def hooked_marketplace(folder: Path, base_url: str) -> Path:
    """The demo catalogue where the data buyer hears of opt-outs by webhook (at the receiver)."""
    data = yaml.safe_load(MARKETPLACE.read_text(encoding="utf-8"))
    data["recipients"][BUYER]["webhook"] = {"url": f"{base_url}/{BUYER}", "secret_env": SECRET_ENV}
    path = folder / "marketplace-webhooks.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with pytest.MonkeyPatch.context() as env, receiving() as r:
        env.setenv(SECRET_ENV, SECRET)
        yield r


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("permissions-page")
    with (
        demo_server(folder, catalogue=hooked_marketplace(folder, receiver.url)) as server,
        server.admin("browser-tests") as api,
    ):
        yield Live(server.url, server.container, api, receiver)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def signed_in(
    browser: Browser,
    live: Live,
    subject: str,
    *,
    locale: str = "en",
    width: int = 1024,
    javascript: bool = True,
) -> Page:
    """A fresh browser context (Accept-Language from ``locale``), signed in through the demo."""
    context = browser.new_context(
        base_url=live.url,
        locale=locale,
        viewport={"width": width, "height": 900},
        java_script_enabled=javascript,
        accept_downloads=True,
    )
    context.set_default_timeout(5000)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"unexpected dialog: {dialog.message}"))
    page.goto("/demo/login")
    page.get_by_role("button", name=customer(subject)).click()
    page.wait_for_url("**/account")
    return page


def flipped(value: str | None) -> str:
    return "false" if value == "true" else "true"


def open_section_of(page: Page, element_id: str) -> None:
    """Open the collapsed section holding ``element_id``, as a customer does: one click on its
    heading (nothing to do when it is open already)."""
    section = page.locator(f"details.section:has([id='{element_id}'])")
    if section.count() and not section.evaluate("d => d.open"):
        section.locator("> summary").click()


def open_all_sections(page: Page) -> None:
    for summary in page.locator("details.section > summary").all():
        if not summary.evaluate("s => s.parentElement.open"):
            summary.click()


# -- finding the page ------------------------------------------------------------------------------
def test_account_home_links_prominently_to_the_permissions_page(
    browser: Browser, live: Live
) -> None:
    page = signed_in(browser, live, "demo-amelie", locale="fr")
    link = page.get_by_role("link", name="Vos autorisations", exact=True)
    expect(link).to_be_visible()
    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vos autorisations")
    summary = page.locator("#summary")
    expect(summary).to_contain_text("vos données ne sont pas vendues")
    expect(summary).to_contain_text("Seul Example Marketplace B.V. utilise votre position précise")
    expect(
        page.get_by_role("heading", name="Comment nous utilisons vos données", exact=True)
    ).to_be_visible()
    for section in ("Sur votre appareil", "Qui reçoit vos données"):
        expect(page.locator("details.section > summary", has_text=section)).to_be_visible()
    page.context.close()


# -- every switch: named by its catalogue title, one click, persisted ------------------------------
@pytest.mark.parametrize(("locale", "subject"), [("fr", "demo-amelie"), ("en", "demo-dylan")])
def test_every_switch_is_named_by_its_title_and_flips_in_one_click(
    browser: Browser, live: Live, locale: str, subject: str
) -> None:
    catalog = live.catalog(locale)
    toggleable = [p for p in catalog if p["toggleable"]]
    page = signed_in(browser, live, subject, locale=locale)
    page.goto(f"/permissions?lang={locale}")  # opening the page: zero clicks
    open_all_sections(page)
    expect(page.get_by_role("switch")).to_have_count(len(toggleable))
    for perm in catalog:
        if not perm["toggleable"]:
            expect(page.get_by_role("switch", name=perm["title"], exact=True)).to_have_count(0)
            expect(page.get_by_role("heading", name=perm["title"], exact=True)).to_be_visible()
    for perm in toggleable:
        switch = page.get_by_role("switch", name=perm["title"], exact=True)
        expect(switch).to_have_count(1)
        expect(switch).to_have_accessible_name(perm["title"])
        before = switch.get_attribute("aria-checked")
        assert before == ("true" if live.effective(subject)[perm["id"]] else "false")
        switch.click()  # the one click
        expect(switch).to_have_attribute("aria-checked", flipped(before))
        assert live.effective(subject)[perm["id"]] is (before == "false"), perm["id"]
    page.context.close()


def test_a_change_is_confirmed_and_can_be_undone(browser: Browser, live: Live) -> None:
    page = signed_in(browser, live, "demo-bram")
    page.goto("/permissions?lang=en")
    open_section_of(page, "sw-marketing.email")
    switch = page.get_by_role("switch", name="Offers by email", exact=True)
    before = switch.get_attribute("aria-checked")
    switch.click()
    card = page.locator("article.perm", has=switch)
    confirmation = card.get_by_role("status")
    expect(confirmation).to_contain_text("Saved: “Offers by email” is")
    expect(switch).to_have_attribute("aria-checked", flipped(before))
    confirmation.get_by_role("button", name="Undo").click()
    expect(switch).to_have_attribute("aria-checked", str(before))
    expect(confirmation).to_contain_text("Undone: your previous choice is back.")
    expect(switch).to_be_focused()
    assert live.effective("demo-bram")["marketing.email"] is (before == "true")
    page.context.close()


def assert_equally_prominent(refuse: Locator, accept: Locator) -> None:
    """Same element, class, computed look and size, side by side in the same form."""
    looks = [
        button.evaluate(
            """(el, props) => {
                const style = getComputedStyle(el);
                return {tag: el.tagName, cls: el.className, parent: el.parentElement.className,
                        styles: props.map((p) => style.getPropertyValue(p))};
            }""",
            PROMINENCE,
        )
        for button in (refuse, accept)
    ]
    assert looks[0] == looks[1]
    boxes = [refuse.bounding_box(), accept.bounding_box()]
    assert boxes[0] is not None and boxes[1] is not None
    assert abs(boxes[0]["width"] - boxes[1]["width"]) < 0.5
    assert abs(boxes[0]["height"] - boxes[1]["height"]) < 0.5
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 0.5  # side by side, same row
    # Same layer: both in the same form, neither behind a dialog or a second step.
    assert refuse.evaluate("(a, b) => a.form === b.form", accept.element_handle())


# -- Refuse all / Accept all -----------------------------------------------------------------------
def test_refuse_all_and_accept_all_are_equally_prominent_and_both_work(
    browser: Browser, live: Live
) -> None:
    page = signed_in(browser, live, "demo-clara", locale="de")
    page.goto("/permissions")
    refuse = page.get_by_role("button", name="Alle ablehnen", exact=True)
    accept = page.get_by_role("button", name="Alle akzeptieren", exact=True)
    assert_equally_prominent(refuse, accept)

    consent = {p["id"] for p in live.catalog("de") if p["legal_basis"] == "consent"}
    toggleable = {p["id"] for p in live.catalog("de") if p["toggleable"]}
    accept.click()  # a confirmation step first, naming what is most sensitive
    expect(page.get_by_role("heading", level=1)).to_have_text("Bevor Sie alles akzeptieren")
    assert_equally_prominent(
        page.get_by_role("button", name="Alle akzeptieren", exact=True),
        page.get_by_role("button", name="Alle außer diesen akzeptieren", exact=True),
    )
    page.get_by_role("button", name="Alle akzeptieren", exact=True).click()
    expect(page.locator('[data-slot="all"]')).to_contain_text("Sie haben alle optionalen")
    assert all(v for k, v in live.effective("demo-clara").items() if k in consent)
    open_section_of(page, "sw-marketing.email")
    expect(page.locator("#sw-marketing\\.email")).to_have_attribute("aria-checked", "true")
    refuse.click()  # refusing stays one click
    expect(page.locator('[data-slot="all"]')).to_contain_text("abgelehnt")
    effective = live.effective("demo-clara")
    # Everything the customer can refuse is off, legitimate interest included (an objection).
    assert not any(v for k, v in effective.items() if k in toggleable)
    assert effective["orders.fulfilment"] and effective["tax.records"]
    expect(page.locator("#sw-marketing\\.email")).to_have_attribute("aria-checked", "false")
    # Counter and switches agree: no switch says On.
    open_all_sections(page)
    expect(page.locator("#consent-count")).to_contain_text(f"0 von {len(toggleable)}")
    expect(page.locator('button[role="switch"][aria-checked="true"]')).to_have_count(0)
    page.context.close()


def test_refuse_all_shows_what_stays_on_and_why_next_to_the_buttons(
    browser: Browser, live: Live
) -> None:
    page = signed_in(browser, live, "demo-amelie")
    page.goto("/permissions?lang=en")
    remains = page.locator("#choices #remains")
    expect(remains).to_be_visible()
    for title in ("Order delivery", "Tax records"):
        expect(remains.get_by_role("link", name=title, exact=True)).to_be_visible()
    expect(remains).to_contain_text("needed for your orders (your contract with us)")
    expect(remains).to_contain_text("required by law")
    # Not grey small print: the same colour as the page's text.
    ink = page.evaluate("getComputedStyle(document.body).color")
    assert remains.evaluate("el => getComputedStyle(el).color") == ink
    page.context.close()


def test_refuse_all_writes_one_event_per_use_that_was_on_and_history_shows_them(
    browser: Browser, live: Live
) -> None:
    subject = "demo-bram"
    before = live.effective(subject)
    switchable = {p["id"] for p in live.catalog("en") if p["toggleable"]}
    was_on = sorted(pid for pid in switchable if before[pid])
    queries = live.container.queries
    seen = {e.event_id for e in queries.history(subject, 500).events}
    page = signed_in(browser, live, subject)
    page.goto("/permissions?lang=en")
    page.get_by_role("button", name="Refuse all", exact=True).click()
    status = page.locator('[data-slot="all"]')
    expect(status).to_contain_text(f"({len(was_on)} changes)")
    written = [e for e in queries.history(subject, 500).events if e.event_id not in seen]
    # One event per use whose effective state changed; nothing for what was already off.
    assert sorted(e.permission_id for e in written) == was_on
    assert all(e.state == "denied" for e in written)
    page.get_by_role("link", name="History", exact=True).click()
    items = page.locator(".history-item")
    shown = items.all_inner_texts()[: len(was_on)]
    titles = {p["id"]: p["title"] for p in live.catalog("en")}
    for pid in was_on:
        assert any(titles[pid] in text for text in shown), (pid, shown)
    page.context.close()


def test_accept_all_except_these_keeps_sale_tracking_and_transfers_off(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-accept-except"
    page = opened(browser, live, subject)
    page.get_by_role("button", name="Accept all", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Before you accept everything")
    sensitive = page.locator("#sensitive")
    expect(sensitive).to_contain_text("Sale of your data")
    expect(sensitive).to_contain_text("Your data is sold to a company that buys personal data.")
    expect(sensitive).to_contain_text("Tracking across other apps")
    expect(sensitive).to_contain_text("You are followed across other apps and websites")
    expect(sensitive).to_contain_text("Customer service from Singapore")
    expect(sensitive).to_contain_text("leaves the European Economic Area, to: Singapore.")
    page.get_by_role("button", name="Accept all except these", exact=True).click()
    expect(page.locator('[data-slot="all"]')).to_contain_text("except the uses named before")
    effective = live.effective(subject)
    for pid in ("sale.data_buyers", "tracking.cross_app", "transfer.outside_eea"):
        assert not effective[pid], pid
    assert effective["marketing.email"] and effective["recommendations.personalised"]
    page.context.close()


# -- keyboard only ---------------------------------------------------------------------------------
FOCUS_STYLE = """el => {
    const s = getComputedStyle(el);
    return {id: el.id || el.textContent.trim().slice(0, 40), visible: el.matches(':focus-visible'),
            style: s.outlineStyle, width: parseFloat(s.outlineWidth)};
}"""


def test_keyboard_only_reaches_a_switch_with_visible_focus_and_toggles_it(
    browser: Browser, live: Live
) -> None:
    page = signed_in(browser, live, "demo-dylan")
    page.goto("/permissions?lang=en")
    target = "sw-marketing.sms"
    unseen: list[str] = []
    for _ in range(80):
        page.keyboard.press("Tab")
        focus = page.evaluate(f"({FOCUS_STYLE})(document.activeElement)")
        if not (focus["visible"] and focus["style"] != "none" and focus["width"] >= 2):
            unseen.append(str(focus["id"]))
        if focus["id"] == target:
            break
        # The heading of the collapsed section that holds the switch: Enter opens it.
        closed = f"details.section:not([open]):has([id='{target}']) > summary"
        if page.evaluate("(sel) => document.activeElement.matches(sel)", closed):
            page.keyboard.press("Enter")
    else:
        pytest.fail("Tab never reached the switch")
    assert unseen == [], f"focus not visible on: {unseen}"
    open_section_of(page, "sw-marketing.sms")
    switch = page.get_by_role("switch", name="Offers by text message", exact=True)
    expect(switch).to_be_focused()
    box = switch.bounding_box()
    assert box is not None and box["width"] >= 24 and box["height"] >= 24  # WCAG 2.5.8
    before = switch.get_attribute("aria-checked")
    page.keyboard.press("Space")
    expect(switch).to_have_attribute("aria-checked", flipped(before))
    assert live.effective("demo-dylan")["marketing.sms"] is (before == "false")
    expect(switch).to_be_focused()
    page.keyboard.press("Enter")  # a native button: Enter works too
    expect(switch).to_have_attribute("aria-checked", str(before))
    page.context.close()


CONTRAST = """() => {
    const parse = (c) => {
        const m = c.match(/rgba?\\(([^)]+)\\)/);
        if (!m) return null;
        const p = m[1].split(",").map(parseFloat);
        return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
    };
    const lum = (c) => {
        const f = (v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
    };
    const ratio = (a, b) => {
        const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
        return (x + 0.05) / (y + 0.05);
    };
    const background = (el) => {
        for (; el; el = el.parentElement) {
            const c = parse(getComputedStyle(el).backgroundColor);
            if (c && c.a > 0.99) return c;
        }
        return {r: 255, g: 255, b: 255, a: 1};
    };
    const bad = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    while (walker.nextNode()) {
        const el = walker.currentNode.parentElement;
        if (!walker.currentNode.textContent.trim() || seen.has(el)) continue;
        seen.add(el);
        const s = getComputedStyle(el);
        const box = el.getBoundingClientRect();
        if (s.visibility === "hidden" || box.width <= 1 || box.height <= 1) continue;
        const size = parseFloat(s.fontSize);
        const large = size >= 24 || (parseInt(s.fontWeight, 10) >= 700 && size >= 18.66);
        const r = ratio(parse(s.color), background(el));
        if (r < (large ? 3 : 4.5)) bad.push(`${el.tagName}.${el.className} ${r.toFixed(2)}`);
    }
    for (const track of document.querySelectorAll(".switch-track")) {
        const fill = parse(getComputedStyle(track).backgroundColor);
        const r = ratio(fill, background(track.parentElement));
        if (r < 3) bad.push(`switch ${track.closest("button").id} ${r.toFixed(2)}`);
    }
    return bad;
}"""


def test_text_and_switches_meet_wcag_aa_contrast(browser: Browser, live: Live) -> None:
    page = signed_in(browser, live, "demo-clara")
    page.goto("/account?lang=en")
    assert page.evaluate(CONTRAST) == []
    page.goto("/permissions?lang=en")
    open_section_of(page, "sw-marketing.email")
    page.get_by_role("switch", name="Offers by email", exact=True).click()
    expect(page.locator("#p-marketing\\.email").get_by_role("status")).to_contain_text("Saved")
    assert page.evaluate(CONTRAST) == []
    for path in ("/permissions/history", "/permissions/accesses", "/permissions/delete"):
        page.goto(f"{path}?lang=en")
        assert page.evaluate(CONTRAST) == [], path
    page.context.close()


# -- without JavaScript ----------------------------------------------------------------------------
def test_without_javascript_a_switch_is_a_form_post_with_confirmation_and_undo(
    browser: Browser, live: Live
) -> None:
    page = signed_in(browser, live, "demo-bram", javascript=False)
    page.goto("/permissions?lang=en")
    open_section_of(page, "sw-search.history")
    switch = page.get_by_role("switch", name="Recent searches", exact=True)
    before = switch.get_attribute("aria-checked")
    with page.expect_navigation():
        switch.click()
    assert "#p-search.history" in page.url
    open_section_of(page, "sw-search.history")
    switch = page.get_by_role("switch", name="Recent searches", exact=True)
    expect(switch).to_have_attribute("aria-checked", flipped(before))
    assert live.effective("demo-bram")["search.history"] is (before == "false")
    card = page.locator("#p-search\\.history")
    expect(card).to_contain_text("Saved: “Recent searches” is")
    with page.expect_navigation():
        card.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("switch", name="Recent searches", exact=True)).to_have_attribute(
        "aria-checked", str(before)
    )
    assert live.effective("demo-bram")["search.history"] is (before == "true")
    page.context.close()


# -- phones ----------------------------------------------------------------------------------------
def test_nothing_scrolls_sideways_at_360_px(browser: Browser, live: Live) -> None:
    page = signed_in(browser, live, "demo-amelie", locale="de", width=360)
    paths = ("/account", "/permissions", "/permissions/history", "/permissions/accesses")
    for path in (*paths, "/permissions/delete"):
        for lang in ("de", "fr"):
            page.goto(f"{path}?lang={lang}")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path}?lang={lang} scrolls sideways by {overflow}px"
    page.goto("/permissions?lang=fr")
    page.screenshot(path=str(SCREENSHOT_360), full_page=True)
    page.context.close()


def test_desktop_screenshot(browser: Browser, live: Live) -> None:
    page = signed_in(browser, live, "demo-bram", width=1100)
    page.goto("/permissions?lang=en")
    open_section_of(page, "sw-analytics.product")
    page.get_by_role("switch", name="Usage statistics", exact=True).click()
    expect(page.locator("#p-analytics\\.product").get_by_role("status")).to_contain_text("Saved")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.context.close()


# -- history and receipts --------------------------------------------------------------------------
def test_history_lists_the_change_with_its_source_and_a_receipt_to_download(
    browser: Browser, live: Live
) -> None:
    page = signed_in(browser, live, "demo-dylan")
    page.goto("/permissions?lang=en")
    open_section_of(page, "sw-microphone.voice_search")
    switch = page.get_by_role("switch", name="Voice search", exact=True)
    before = switch.get_attribute("aria-checked")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", flipped(before))
    page.get_by_role("link", name="History", exact=True).click()
    expect(page.get_by_role("link", name="History", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    latest = page.locator(".history-item").first
    expect(latest).to_contain_text("Voice search")
    expect(latest).to_contain_text("Switched on" if before == "false" else "Switched off")
    expect(latest).to_contain_text("Website")
    expect(latest.locator("time")).to_contain_text(" UTC")  # a date in the locale's format
    with page.expect_download() as download:
        latest.get_by_role("link", name="Download receipt (JSON)").click()
    data = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename.startswith("consent-receipt-")
    # The signed ISO/IEC TS 27560 receipt: verified offline with the published keys.
    keys = load_receipt_keys(live.container.settings).verifying_keys()
    receipt = verify_receipt_file(data, keys).receipt
    assert receipt["pii_principal_id"] == "demo-dylan"
    assert receipt["privacy_notice"]["notice_id"] == "microphone.voice_search"
    assert receipt["privacy_notice"]["title"] == "Voice search"
    assert receipt["collection_method"]["source"] == "web"
    assert receipt["events"][0]["event_state"] == ("given" if before == "false" else "withdrawn")
    assert len(receipt["ledger"]["hash"]) == 64
    jwks = live.api.get("/.well-known/consentry-keys.json").json()
    assert any(k["kid"] in keys for k in jwks["keys"])
    page.context.close()


# -- languages -------------------------------------------------------------------------------------
def test_accept_language_picks_the_language_and_the_switcher_changes_it(
    browser: Browser, live: Live
) -> None:
    # A customer with no stored language: the browser's Accept-Language decides.
    context = browser.new_context(base_url=live.url, locale="nl-BE")
    page = context.new_page()
    page.goto(f"/permissions?token={live.container.tokens.issue('e2e-language')}")
    assert page.evaluate("document.documentElement.lang") == "nl"
    expect(page.get_by_role("heading", level=1)).to_have_text("Uw toestemmingen")
    nl_title = next(p["title"] for p in live.catalog("nl") if p["id"] == "marketing.email")
    open_section_of(page, "sw-marketing.email")
    expect(page.get_by_role("switch", name=nl_title, exact=True)).to_have_count(1)
    page.get_by_role("navigation", name="Taal").get_by_role("button", name="Deutsch").click()
    # The switcher's form loads a new page: wait for it (evaluating during the navigation finds
    # no document).
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Berechtigungen")
    de_title = next(p["title"] for p in live.catalog("de") if p["id"] == "marketing.email")
    open_section_of(page, "sw-marketing.email")
    expect(page.get_by_role("switch", name=de_title, exact=True)).to_have_count(1)
    # The choice sticks: without ?lang the page stays in German, despite Accept-Language.
    page.goto("/permissions")
    assert page.evaluate("document.documentElement.lang") == "de"
    context.close()


def test_the_customers_stored_language_wins_over_the_browsers(browser: Browser, live: Live) -> None:
    # Bram's account is in Dutch; his browser asks for English.
    page = signed_in(browser, live, "demo-bram", locale="en-GB")
    page.goto("/permissions")
    assert page.evaluate("document.documentElement.lang") == "nl"
    page.goto("/permissions/history")
    assert page.evaluate("document.documentElement.lang") == "nl"
    page.context.close()


def test_who_used_my_data_explains_its_empty_state(browser: Browser, live: Live) -> None:
    page = signed_in(browser, live, "demo-clara")
    page.goto("/permissions?lang=en")
    page.get_by_role("link", name="Who used my data", exact=True).click()
    expect(page.locator("#accesses-empty")).to_contain_text("Nothing to show yet.")
    expect(page.locator("#accesses-empty")).to_contain_text("No service has reported using")
    page.context.close()


# -- customers opened by the platform with a subject token (fresh subjects, not the demo's) -------
def opened(
    browser: Browser,
    live: Live,
    subject: str,
    *,
    locale: str = "en",
    javascript: bool = True,
    headers: dict[str, str] | None = None,
) -> Page:
    """A fresh context on the page, signed in as ``subject`` by a token in the URL."""
    context = browser.new_context(
        base_url=live.url,
        locale=locale,
        viewport={"width": 1024, "height": 900},
        java_script_enabled=javascript,
        accept_downloads=True,
        extra_http_headers=headers or {},
    )
    context.set_default_timeout(5000)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"unexpected dialog: {dialog.message}"))
    page.goto(f"/permissions?lang={locale}&token={live.container.tokens.issue(subject)}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert "token=" not in page.url
    return page


def grant_on_old_notice(live: Live, subject: str, pid: str, version: str) -> None:
    """A grant recorded while the notice was at ``version`` (before it changed materially)."""
    catalogue = live.container.catalogue
    perms = tuple(
        p.model_copy(update={"notice": p.notice.model_copy(update={"version": version})})
        if p.id == pid
        else p
        for p in catalogue.permissions
    )
    older = catalogue.model_copy(update={"permissions": perms})
    ConsentService(live.container.db, CatalogueIndex(older)).change(
        subject, [Change(pid, ChoiceState.GRANTED)], Context("web", "en")
    )


# -- Global Privacy Control ----------------------------------------------------------------------
def test_a_browser_sending_gpc_is_opted_out_of_sale_and_sharing_and_told_so(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-gpc"
    live.container.rights.set_jurisdiction(subject, "US-CA")  # sale is on by default there
    assert live.effective(subject)["sale.data_buyers"]
    page = opened(browser, live, subject, headers={"Sec-GPC": "1"})
    gpc = page.locator("#gpc")
    expect(gpc).to_have_text("Your browser asked us not to sell or share your data — done.")
    assert not live.effective(subject)["sale.data_buyers"]
    expect(page.get_by_role("switch", name="Sale of your data", exact=True)).to_have_attribute(
        "aria-checked", "false"
    )
    page.get_by_role("link", name="History", exact=True).click()
    expect(page.locator(".history-item").first).to_contain_text("Global Privacy Control (GPC)")
    page.context.close()
    # The state shows the opt-out: a browser without the signal sees the confirmation too.
    plain = opened(browser, live, subject, locale="fr")
    expect(plain.locator("#gpc")).to_contain_text("Votre navigateur nous a demandé")
    plain.context.close()


# -- opt-out deliveries --------------------------------------------------------------------------
def test_a_withdrawal_shows_the_partners_delivery_pending_then_acknowledged(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-deliveries"
    page = opened(browser, live, subject)
    switch = page.get_by_role("switch", name="Sale of your data", exact=True)
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()  # withdrawn: the buyer must be told
    expect(switch).to_have_attribute("aria-checked", "false")
    buyer = page.locator(".recipient", has_text="Cobalt Audience Exchange Inc")
    container = live.container
    # The relay plans the delivery (this one does not send webhooks) ...
    Relay(container.db, FeedPublisher(), catalogue=container.catalogue).drain()
    page.reload()
    expect(buyer.locator(".delivery")).to_have_text("Opt-out pending: not delivered yet.")
    # ... and a relay that does sends it; the receiver answers 200.
    relay = build_relay(container.db, container.catalogue, relay_config(container.settings))
    try:
        relay.drain()
    finally:
        relay.close()
    assert any(
        json.loads(r.body).get("subject") == subject for r in live.receiver.bodies(f"/{BUYER}")
    )
    page.reload()
    line = buyer.locator(".delivery")
    expect(line).to_contain_text("Opt-out sent on ")
    expect(line).to_contain_text(", acknowledged on ")
    page.goto("/permissions?lang=nl")
    expect(buyer.locator(".delivery")).to_contain_text("Afmelding verstuurd op")
    page.context.close()


# -- rights: download, delete --------------------------------------------------------------------
def test_download_my_data_gives_json_and_csv_files(browser: Browser, live: Live) -> None:
    subject = "e2e-export"
    page = opened(browser, live, subject)
    open_section_of(page, "sw-marketing.email")
    page.get_by_role("switch", name="Offers by email", exact=True).click()
    expect(page.get_by_role("switch", name="Offers by email", exact=True)).to_have_attribute(
        "aria-checked", "true"
    )
    page.locator("#your-data > summary").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download my data (JSON)").click()
    assert download.value.suggested_filename == "my-data.json"
    record = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert record["subject"] == subject
    assert [h["permission"] for h in record["history"]] == ["marketing.email"]
    with page.expect_download() as download:
        page.get_by_role("button", name="Download my data (CSV)").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("occurred_at,event_id,") and "marketing.email" in lines[1]
    page.context.close()


def test_delete_my_data_without_javascript_confirms_then_erases_and_signs_out(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-erase"
    live.container.consents.change(
        subject, [Change("marketing.email", ChoiceState.GRANTED)], Context("web")
    )
    page = opened(browser, live, subject, javascript=False)
    page.locator("#your-data > summary").click()
    page.get_by_role("link", name="Delete my data…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete my data")
    expect(page.get_by_role("heading", name="What is deleted")).to_be_visible()
    expect(page.get_by_role("heading", name="What is kept as proof")).to_be_visible()
    page.get_by_role("link", name="Cancel, keep my data").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your permissions")
    assert live.effective(subject)["marketing.email"]  # cancelled: nothing erased
    page.locator("#your-data > summary").click()
    page.get_by_role("link", name="Delete my data…").click()
    page.get_by_role("button", name="Yes, delete my data").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data has been deleted")
    assert "/permissions/deleted" in page.url
    assert not live.effective(subject)["marketing.email"]
    assert live.container.queries.history(subject, 1).events == []  # the id leads nowhere now
    page.goto("/permissions?lang=en")  # signed out
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to see your permissions")
    page.context.close()


# -- re-consent after a material change ----------------------------------------------------------
def test_a_material_change_asks_once_with_equal_buttons_and_no_thanks_is_kept(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-reconsent-no"
    grant_on_old_notice(live, subject, "sharing.ad_partners", "2")
    page = opened(browser, live, subject)
    prompt = page.locator("#reconsent")
    expect(prompt.get_by_role("heading", level=2)).to_have_text(
        "We changed something you had allowed"
    )
    expect(prompt).to_contain_text("We added a second ad network, Bannerfield Media GmbH")
    # At the top: before the choices, right after the heading and its list of sections.
    first = page.evaluate("document.querySelector('main section').id")
    assert first == "reconsent"
    no = prompt.get_by_role("button", name="No thanks", exact=True)
    yes = prompt.get_by_role("button", name="Allow again", exact=True)
    assert_equally_prominent(no, yes)
    with page.expect_navigation():
        no.click()
    expect(page.locator("#reconsent")).to_have_count(0)
    page.reload()
    expect(page.locator("#reconsent")).to_have_count(0)  # not asked again
    latest = live.container.queries.history(subject, 1).events[0]
    assert (latest.permission_id, latest.state, latest.notice_version) == (
        "sharing.ad_partners",
        "denied",
        "3",
    )
    assert not live.effective(subject)["sharing.ad_partners"]
    page.context.close()


def test_allow_again_by_keyboard_records_a_grant_on_the_new_notice(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-reconsent-yes"
    grant_on_old_notice(live, subject, "sharing.ad_partners", "2")
    page = opened(browser, live, subject, locale="de")
    expect(page.locator("#reconsent")).to_contain_text("Bannerfield Media GmbH")
    for _ in range(30):
        page.keyboard.press("Tab")
        focus = page.evaluate(f"({FOCUS_STYLE})(document.activeElement)")
        if focus["id"] == "Wieder erlauben":
            break
    else:
        pytest.fail("Tab never reached the re-consent button")
    assert focus["visible"] and focus["style"] != "none" and focus["width"] >= 2
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("#reconsent")).to_have_count(0)
    assert live.effective(subject)["sharing.ad_partners"]
    latest = live.container.queries.history(subject, 1).events[0]
    assert (latest.state, latest.notice_version) == ("granted", "3")
    page.context.close()


# -- expired and auto-reset grants; the rules that apply -----------------------------------------
def test_expired_and_auto_reset_grants_read_differently_from_refusals_and_rules_are_named(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-lifecycle"
    consents = live.container.consents
    live.container.rights.set_jurisdiction(subject, "BE")
    ended = datetime.now(UTC) - timedelta(hours=1)
    consents.change(
        subject,
        [
            Change("marketing.email", ChoiceState.GRANTED, expires_at=ended),
            Change("marketing.push", ChoiceState.GRANTED),
            Change("marketing.sms", ChoiceState.DENIED),
        ],
        Context("web"),
    )
    # What UsesService.auto_reset writes for a grant nobody used (one subject only, here).
    consents.change(
        subject,
        [Change("marketing.push", ChoiceState.DENIED, options={"reason": "auto_reset"})],
        Context(source="system"),
    )
    page = opened(browser, live, subject)
    expect(page.locator("#rules")).to_have_text(
        "You are in Belgium: nothing is used for purposes that need your consent until you "
        "allow it."
    )
    expect(page.locator("#p-marketing\\.email .perm-note")).to_contain_text("Expired on ")
    expect(page.locator("#p-marketing\\.email .badge-status")).to_have_text("Expired")
    expect(page.locator("#p-marketing\\.push .perm-note")).to_contain_text(
        "Switched off automatically because it was not used since "
    )
    expect(page.locator("#p-marketing\\.sms .perm-note")).to_have_count(0)  # a plain refusal
    page.goto("/permissions?lang=nl")
    expect(page.locator("#rules")).to_contain_text("U bent in België")
    expect(page.locator("#p-marketing\\.email .badge-status")).to_have_text("Verlopen")
    # Switched on again (with the script): the expiry no longer applies, nor its note.
    open_section_of(page, "sw-marketing.email")
    page.locator("#sw-marketing\\.email").click()
    expect(page.locator("#sw-marketing\\.email")).to_have_attribute("aria-checked", "true")
    expect(page.locator("#p-marketing\\.email .perm-note")).to_have_count(0)
    expect(page.locator("#p-marketing\\.email .badge-status")).to_have_count(0)
    page.context.close()


def test_answering_a_changed_notice_with_its_switch_ends_the_prompt_without_reload(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-reconsent-switch"
    grant_on_old_notice(live, subject, "sharing.ad_partners", "2")
    page = opened(browser, live, subject)
    expect(page.locator("#reconsent")).to_be_visible()
    switch = page.get_by_role("switch", name="Sharing with ad networks", exact=True)
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(page.locator("#reconsent")).to_have_count(0)
    assert live.effective(subject)["sharing.ad_partners"]
    page.context.close()


# -- API docs offline ------------------------------------------------------------------------------
def test_swagger_ui_and_redoc_render_with_every_other_host_unreachable(
    browser: Browser, live: Live
) -> None:
    context = browser.new_context(base_url=live.url)
    elsewhere: list[str] = []

    def only_here(route: Any) -> None:
        if route.request.url.startswith(live.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_here)
    page = context.new_page()
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("consentry")
    expect(page.locator(".opblock").first).to_be_visible()
    page.goto("/redoc")
    expect(page.get_by_role("heading", level=1).first).to_contain_text("consentry")
    # No script or style from elsewhere. ReDoc's bundle asks redoc.ly for its own logo (an
    # image in its footer), which simply does not show offline.
    assert [u for u in elsewhere if not u.endswith("/logo-mini.svg")] == []
    context.close()


# -- who used my data ------------------------------------------------------------------------------
def test_who_used_my_data_names_the_switch_its_data_local_time_and_a_way_to_stop_it(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-uses"
    live.container.consents.change(
        subject,
        [Change("ads.personalised", ChoiceState.GRANTED, notice_version="1")],
        Context("web", "en"),
    )
    used_at = datetime.now(UTC)  # after the grant: an allowed use
    offset = used_at.astimezone(ZoneInfo("Europe/Brussels")).utcoffset()
    assert offset is not None
    zone = f"GMT+{int(offset.total_seconds()) // 3600}"
    live.container.uses.record(
        [
            UseReport(
                subject,
                "advertising.personalised",
                ("behaviour.browsing", "behaviour.purchases"),
                "example_marketplace",
                used_at,
            )
        ],
        service="e2e",
    )
    context = browser.new_context(base_url=live.url, timezone_id="Europe/Brussels")
    page = context.new_page()
    page.goto(f"/permissions/accesses?lang=en&token={live.container.tokens.issue(subject)}")
    item = page.locator(".history-item").first
    title = next(p["title"] for p in live.catalog("en") if p["id"] == "ads.personalised")
    expect(item.locator("strong")).to_have_text(title)  # the switch's own title
    expect(item).to_contain_text("Pages and products viewed")  # a category, by its label
    expect(item).to_contain_text("Example Marketplace B.V. (Netherlands)")
    expect(item.locator("time").first).to_contain_text(zone)  # the customer's time zone
    assert "did not respect" not in item.inner_text()
    item.get_by_role("link", name="Stop this").click()
    switch = page.get_by_role("switch", name=title, exact=True)
    expect(switch).to_be_visible()  # its section opened
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    assert not live.effective(subject)["ads.personalised"]
    context.close()


# -- a receipt a person reads ----------------------------------------------------------------------
def test_a_receipt_opens_as_a_readable_page_in_the_customers_language_with_the_jws_beside(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-receipt-page"
    page = opened(browser, live, subject, locale="fr")
    open_section_of(page, "sw-marketing.email")
    switch = page.locator("#sw-marketing\\.email")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    page.get_by_role("link", name="Historique", exact=True).click()
    page.locator(".history-item").first.get_by_role("link", name="Reçu", exact=False).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reçu de votre choix")
    title = next(p["title"] for p in live.catalog("fr") if p["id"] == "marketing.email")
    text = next(p["text"] for p in live.catalog("fr") if p["id"] == "marketing.email")
    receipt = page.locator("#receipt")
    expect(receipt.get_by_role("heading", level=2)).to_have_text(title)
    expect(page.locator("#receipt-notice")).to_have_text(text)  # what was shown, that version
    expect(receipt).to_contain_text("Activé")  # what was chosen
    expect(receipt).to_contain_text("Site web")  # from where
    expect(receipt.locator("time")).not_to_be_empty()
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger le reçu signé (JSON)").click()
    keys = load_receipt_keys(live.container.settings).verifying_keys()
    signed = verify_receipt_file(Path(download.value.path()).read_bytes(), keys).receipt
    assert signed["privacy_notice"]["notice_id"] == "marketing.email"
    page.context.close()
