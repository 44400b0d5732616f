"""Every switch of the Permissions page is found in seconds, measured in Chromium.

For every demo customer, in French, Dutch, German and English, on a 360x740 phone and a
1280x800 laptop: each switch is at most 2 clicks from the top of the freshly opened page and at
most 1 screen of scrolling after the last click, and the page in its default state (sections
collapsed, sale and sharing open) is at most 4 screens tall. ``tests/page_reach.py`` prints the
same figures as JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from browser_support import chromium, demo_server
from consentry.catalogue_io import load_catalogue
from consentry.demo.customers import DEMO_CUSTOMERS
from page_reach import LANGUAGES, VIEWPORTS, measure

pytestmark = pytest.mark.browser

MARKETPLACE = Path(__file__).parents[2] / "catalogues" / "marketplace.yaml"
MAX_CLICKS = 2
MAX_SCROLL_SCREENS = 1.0
MAX_HEIGHT_SCREENS = 4.0


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(tmp_path_factory.mktemp("reach")) as server:
        yield server.url


@pytest.fixture(scope="module", name="chromium")
def chromium_browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("subject", [c.subject_id for c in DEMO_CUSTOMERS])
def test_every_switch_is_two_clicks_and_one_screen_away_and_the_page_is_four_screens(
    chromium: Browser, demo_url: str, subject: str, viewport: str
) -> None:
    name = next(c.name for c in DEMO_CUSTOMERS if c.subject_id == subject)
    width, height = VIEWPORTS[viewport]
    switchable = sum(1 for p in load_catalogue(MARKETPLACE).permissions if p.toggleable)
    missed: list[str] = []
    for lang in LANGUAGES:
        context = chromium.new_context(
            base_url=demo_url, locale=lang, viewport={"width": width, "height": height}
        )
        try:
            page = context.new_page()
            page.goto("/demo/login")
            page.get_by_role("button", name=name).click()
            page.wait_for_url("**/account")
            page.goto(f"/permissions?lang={lang}")
            reach = measure(page, max_clicks=MAX_CLICKS, max_scroll=MAX_SCROLL_SCREENS)
        finally:
            context.close()
        # Every switchable use is on the page and measured.
        assert len(reach.reaches) == switchable, (lang, [r.switch for r in reach.reaches])
        for r in reach.reaches:
            if r.clicks is None or r.clicks > MAX_CLICKS or r.scroll > MAX_SCROLL_SCREENS:
                missed.append(f"{lang}: {r.switch} clicks={r.clicks} scroll={r.scroll:.2f}")
        if reach.height_screens > MAX_HEIGHT_SCREENS:
            missed.append(f"{lang}: page is {reach.height_screens:.2f} screens tall")
    assert not missed, "\n".join(missed)
