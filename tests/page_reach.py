"""How far each switch of the Permissions page is from the top, measured in Chromium.

For one page (a customer, a language, a viewport) this finds, for every switch, the fewest
in-page clicks (a link to a part of the page, or the heading of a collapsible section) from the
freshly opened page after which the switch is at most ``max_scroll`` screens of scrolling away,
and how many screens of scrolling that leaves; and how tall the page is in its default state,
in screens. A click is only counted on something visible on screen at that moment, so "two
clicks" means two clicks a customer can make without scrolling first.

Run as a script it starts the demo (SQLite in a temporary folder, the demo catalogue and
customers) and prints the figures for every demo customer and language at 360x740 and 1280x800
as JSON: ``.venv/bin/python tests/page_reach.py``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from playwright.sync_api import Page

# The state of the page: which collapsible sections are open, and where it is scrolled to.
_SNAPSHOT = """() => ({
  open: Array.from(document.querySelectorAll('details')).map(d => d.open),
  y: window.scrollY,
})"""
_RESTORE = """(s) => {
  document.querySelectorAll('details').forEach((d, i) => { d.open = s.open[i]; });
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  window.scrollTo(0, s.y);
}"""
# What a customer can click on screen now without leaving the page: links to a part of the page
# and the headings of collapsible sections. Each gets a stable index for the path.
_CLICKABLE = """() => {
  const vh = window.innerHeight;
  const all = Array.from(document.querySelectorAll('a[href^="#"], summary'));
  const out = [];
  all.forEach((el, i) => {
    const r = el.getBoundingClientRect();
    if (!el.checkVisibility() || r.width === 0 || r.height === 0) return;
    if (r.bottom <= 0 || r.top >= vh) return;
    out.push(i);
  });
  return out;
}"""
_CLICK = """(i) => {
  const el = Array.from(document.querySelectorAll('a[href^="#"], summary'))[i];
  el.click();
}"""
# For every switch: how many screens of scrolling bring it fully on screen (0 when it is),
# or null when it is hidden (in a closed section).
_DISTANCES = """() => {
  const vh = window.innerHeight;
  const out = {};
  document.querySelectorAll('button[role="switch"]').forEach(el => {
    const r = el.getBoundingClientRect();
    // checkVisibility: false inside a closed <details> (whose content keeps a stale box).
    if (!el.checkVisibility() || r.width === 0 || r.height === 0) { out[el.id] = null; return; }
    let px = 0;
    if (r.bottom > vh) px = r.bottom - vh;
    else if (r.top < 0) px = -r.top;
    out[el.id] = px / vh;
  });
  return out;
}"""


@dataclass(frozen=True, slots=True)
class Reach:
    switch: str
    clicks: int | None  # None: not reachable within the clicks tried and the scroll allowed
    scroll: float  # screens of scrolling after the last click (or from the top, if no click)


@dataclass(frozen=True, slots=True)
class PageReach:
    height_screens: float
    reaches: tuple[Reach, ...]

    @property
    def worst_clicks(self) -> int | None:
        clicks = [r.clicks for r in self.reaches]
        return None if None in clicks else max((c for c in clicks if c is not None), default=0)

    @property
    def worst_scroll(self) -> float:
        return max((r.scroll for r in self.reaches), default=0.0)

    def summary(self) -> dict[str, Any]:
        return {
            "switches": len(self.reaches),
            "height_screens": round(self.height_screens, 2),
            "max_clicks": self.worst_clicks,
            "max_scroll_screens": round(self.worst_scroll, 2),
            "unreached": [r.switch for r in self.reaches if r.clicks is None],
        }


def measure(page: Page, *, max_clicks: int = 2, max_scroll: float = 1.0) -> PageReach:
    """Measure the page as it is now (freshly opened, at the top)."""
    page.evaluate("window.scrollTo(0, 0)")
    height = page.evaluate("document.documentElement.scrollHeight / window.innerHeight")
    start = page.evaluate(_SNAPSHOT)
    best: dict[str, tuple[int, float]] = {}
    first_seen: dict[str, float] = {}

    def record(clicks: int) -> None:
        for switch, distance in page.evaluate(_DISTANCES).items():
            if distance is None:
                continue
            if clicks == 0:
                first_seen[switch] = distance
            if distance <= max_scroll + 1e-9:
                known = best.get(switch)
                if known is None or (clicks, distance) < known:
                    best[switch] = (clicks, distance)

    def explore(path: tuple[int, ...]) -> None:
        page.evaluate(_RESTORE, start)
        for index in path:
            page.evaluate(_CLICK, index)
        record(len(path))
        if len(path) >= max_clicks:
            return
        for index in page.evaluate(_CLICKABLE):
            explore((*path, index))
            page.evaluate(_RESTORE, start)
            for step in path:
                page.evaluate(_CLICK, step)

    explore(())
    page.evaluate(_RESTORE, start)
    switches = list(page.evaluate(_DISTANCES))
    reaches = []
    for switch in switches:
        if switch in best:
            clicks, scroll = best[switch]
            reaches.append(Reach(switch, clicks, scroll))
        else:
            reaches.append(Reach(switch, None, first_seen.get(switch, float("inf"))))
    return PageReach(height, tuple(reaches))


VIEWPORTS = {"360x740": (360, 740), "1280x800": (1280, 800)}
LANGUAGES = ("fr", "nl", "de", "en")


def main() -> int:  # pragma: no cover - a measuring command, run by hand
    import tempfile
    from pathlib import Path

    from browser_support import chromium, demo_server
    from consentry.demo.customers import DEMO_CUSTOMERS

    detail = "--detail" in sys.argv
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder, demo_server(Path(folder)) as server:
        url = server.url
        with chromium() as browser:
            for customer in DEMO_CUSTOMERS:
                for name, (width, height) in VIEWPORTS.items():
                    for lang in LANGUAGES:
                        context = browser.new_context(
                            base_url=url, locale=lang, viewport={"width": width, "height": height}
                        )
                        page = context.new_page()
                        page.goto("/demo/login")
                        page.get_by_role("button", name=customer.name).click()
                        page.wait_for_url("**/account")
                        page.goto(f"/permissions?lang={lang}")
                        reach = measure(page)
                        row = {
                            "customer": customer.subject_id,
                            "viewport": name,
                            "lang": lang,
                            **reach.summary(),
                        }
                        if detail:
                            row["reaches"] = [asdict(r) for r in reach.reaches]
                        results.append(row)
                        print(json.dumps(row), file=sys.stderr, flush=True)
                        context.close()
    print(json.dumps({"pages": results}, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
