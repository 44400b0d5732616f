"""The customer's stored language and time zone in a real browser (Debian's Chromium): a
language picked on one device follows the customer to another, times follow the stored zone,
and the readable summary of their data prints in their language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from browser_support import chromium, demo_server
from consentry.bootstrap import Container
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState

pytestmark = pytest.mark.browser


@dataclass
class Live:
    url: str
    container: Container
    api: httpx.Client

    def titles(self, locale: str) -> dict[str, str]:
        response = self.api.get("/v1/catalog", params={"locale": locale})
        response.raise_for_status()
        return {p["id"]: p["title"] for p in response.json()["permissions"]}

    def set_preferences(self, subject: str, **values: str) -> None:
        self.api.put(f"/v1/subjects/{subject}/preferences", json=values).raise_for_status()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with (
        demo_server(tmp_path_factory.mktemp("page-preferences")) as server,
        server.admin("preference-tests") as api,
    ):
        yield Live(server.url, server.container, api)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def fresh(
    browser: Browser,
    live: Live,
    subject: str,
    *,
    locale: str = "en-US",
    zone: str = "UTC",
    javascript: bool = True,
    path: str = "/permissions",
) -> Page:
    """A new browser (no cookies) with its own language and zone, signed in by a token link."""
    context = browser.new_context(
        base_url=live.url, locale=locale, timezone_id=zone, java_script_enabled=javascript
    )
    context.set_default_timeout(5000)
    page = context.new_page()
    page.goto(f"{path}?token={live.container.tokens.issue(subject)}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    return page


def test_french_chosen_on_one_browser_is_the_language_of_a_fresh_one(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-pref-lang-oriane"
    laptop = fresh(browser, live, subject)
    assert laptop.evaluate("document.documentElement.lang") == "en"
    laptop.get_by_role("navigation", name="Language").get_by_role("button", name="Français").click()
    expect(laptop.locator("html")).to_have_attribute("lang", "fr")
    expect(laptop.get_by_role("heading", level=1)).to_have_text("Vos autorisations")
    laptop.context.close()
    # Another device, an English browser, no cookie: signing in is enough.
    phone = fresh(browser, live, subject, locale="en-GB")
    expect(phone.locator("html")).to_have_attribute("lang", "fr")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Vos autorisations")
    phone.goto("/permissions/history?lang=en")  # a link carrying English changes nothing
    expect(phone.locator("html")).to_have_attribute("lang", "fr")
    phone.context.close()


def _first_time(page: Page) -> str:
    return page.locator(".history-item time").first.inner_text()


def test_times_follow_the_stored_zone_picked_without_javascript_then_through_the_api(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-pref-zone-teodor"
    live.container.consents.change(
        subject, [Change("marketing.email", ChoiceState.DENIED)], Context("web", "en")
    )
    # No script: nothing is guessed, the customer picks in "Your data" (times were in UTC).
    page = fresh(browser, live, subject, javascript=False, zone="Asia/Tokyo")
    page.goto("/permissions/history?lang=en")
    in_utc = _first_time(page)
    assert in_utc.endswith("UTC")
    page.goto("/permissions?lang=en")
    page.locator("#your-data > summary").click()
    page.get_by_label("The times on these pages").select_option("Europe/Amsterdam")
    page.get_by_role("button", name="Save time zone").click()
    expect(page.locator("#time-zone")).to_contain_text("Saved: your time zone is now Amsterdam.")
    page.goto("/permissions/history?lang=en")
    in_amsterdam = _first_time(page)
    assert "GMT+01:00" in in_amsterdam or "GMT+02:00" in in_amsterdam
    live.set_preferences(subject, time_zone="America/New_York")
    page.reload()
    in_new_york = _first_time(page)
    assert "GMT-05:00" in in_new_york or "GMT-04:00" in in_new_york
    assert len({in_utc, in_amsterdam, in_new_york}) == 3
    page.context.close()
    # With the script, in a browser elsewhere: the stored zone still wins over the browser's.
    scripted = fresh(browser, live, subject, zone="Asia/Tokyo", path="/permissions/history")
    assert _first_time(scripted) == in_new_york
    scripted.context.close()


def test_the_browsers_zone_is_stored_once_when_the_customer_has_none(
    browser: Browser, live: Live
) -> None:
    subject = "e2e-pref-zone-first-ilka"
    context = browser.new_context(base_url=live.url, locale="en-US", timezone_id="Asia/Tokyo")
    context.set_default_timeout(5000)
    page = context.new_page()
    with page.expect_response("**/permissions/time-zone") as sent:
        page.goto(f"/permissions?token={live.container.tokens.issue(subject)}")
    assert sent.value.status == 204
    assert live.container.preferences.get(subject).time_zone == "Asia/Tokyo"
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-time-zone", "Asia/Tokyo")
    context.close()


def test_the_readable_summary_is_in_the_customers_language_lists_the_permissions_and_prints(
    browser: Browser, live: Live, tmp_path: Path
) -> None:
    subject = "e2e-pref-summary-wim"
    live.container.consents.change(
        subject,
        [Change("marketing.email", ChoiceState.GRANTED, notice_version="1")],
        Context("web", "nl"),
    )
    live.set_preferences(subject, locale="nl", time_zone="Europe/Brussels")
    page = fresh(browser, live, subject, locale="en-US")
    page.locator("#your-data > summary").click()
    links = page.locator("#your-data").get_by_role("link")
    summary = "Mijn gegevens lezen (overzicht om af te drukken of als pdf op te slaan)"
    expect(links.first).to_have_text(summary)  # the first, most prominent way to get them
    links.first.click()
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Uw gegevens bij")
    titles = live.titles("nl")
    listed = page.locator("#export-permissions li strong").all_inner_texts()
    assert sorted(listed) == sorted(titles.values())
    expect(page.locator("#export-history")).to_contain_text(titles["marketing.email"])
    brussels = re.compile(r"GMT\+0[12]:00")  # the stored zone, winter or summer
    expect(page.locator("#export-history time").first).to_have_text(brussels)
    button = page.get_by_role("button", name="Afdrukken of opslaan als pdf")
    expect(button).to_be_visible()  # the script shows it; without one the browser's menu prints
    page.emulate_media(media="print")
    expect(button).to_be_hidden()
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator("#export-permissions")).to_be_visible()
    pdf = tmp_path / "my-data.pdf"
    page.pdf(path=str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF")
    page.context.close()
