""" "Who used my data" on a phone: a service that asked through the SDK, was told no and reported
the uses it refrained from makes the tab say how often, in a sentence with the switch's own
title and a link to that switch — with JavaScript and without."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from browser_support import DemoServer, chromium, demo_server
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.sdk import Consentry

pytestmark = pytest.mark.browser

ADS = "ads.personalised"
PURPOSE, CATEGORIES = "advertising.personalised", ["behaviour.browsing"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("refused-uses")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def refrain(live: DemoServer, subject: str, times: int) -> None:
    """An ads service asks ``times`` times through the SDK, is told no each time and reports
    each use it refrained from."""
    key = live.container.keys.create(["decide", "uses:write"], name="ads-service")
    with Consentry(live.url, api_key=key, follow=False, uses_flush_every=60.0) as sdk:
        for _ in range(times):
            assert not sdk.allows(subject, PURPOSE, CATEGORIES)
            sdk.report_use(subject, PURPOSE, CATEGORIES, outcome="refrained")
        assert sdk.flush(timeout=10)


def on_a_phone(browser: Browser, live: DemoServer, subject: str, javascript: bool) -> Page:
    context = browser.new_context(
        base_url=live.url,
        locale="en",
        viewport={"width": 360, "height": 740},
        java_script_enabled=javascript,
    )
    context.set_default_timeout(5000)
    page = context.new_page()
    page.goto(f"/permissions/accesses?lang=en&token={live.container.tokens.issue(subject)}")
    return page


def switch_title(live: DemoServer) -> str:
    perm = live.container.catalogue.permission(ADS)
    assert perm is not None
    return live.container.catalogue.text(perm.notice.title, "en")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_refused_uses_are_counted_by_switch_on_a_phone_and_link_to_the_switch(
    browser: Browser, live: DemoServer, javascript: bool
) -> None:
    subject = f"e2e-refused-{'js' if javascript else 'nojs'}"
    refrain(live, subject, 3)
    page = on_a_phone(browser, live, subject, javascript)
    block = page.locator("#refused")
    expect(block.get_by_role("heading", level=3)).to_have_text("Refused because you said no")
    title = switch_title(live)
    expect(block.locator("li")).to_have_count(1)
    expect(block.locator("li")).to_contain_text(
        f"We did not use your data for “{title}” 3 times this week, because it is off."
    )
    expect(page.locator(".history-item")).to_have_count(0)  # refused: nothing was used
    # Fits the phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    block.get_by_role("link", name="See this switch").click()
    switch = page.locator(f"[id='sw-{ADS}']")
    expect(switch).to_be_visible()  # its section opened, without a click
    expect(switch).to_have_attribute("aria-checked", "false")
    page.context.close()


def test_a_switch_turned_back_on_says_the_refused_uses_were_off_then(
    browser: Browser, live: DemoServer
) -> None:
    subject = "e2e-refused-then-on"
    refrain(live, subject, 1)
    live.container.consents.change(
        subject, [Change(ADS, ChoiceState.GRANTED, notice_version="1")], Context("web", "en")
    )
    page = on_a_phone(browser, live, subject, javascript=True)
    expect(page.locator("#refused li")).to_have_text(
        f"We did not use your data for “{switch_title(live)}” 1 time this week, because it was "
        "off then. See this switch"
    )
    page.context.close()
