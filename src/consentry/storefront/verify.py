"""``consentry verify-site URL``: drive Debian's Chromium through each consent state and judge
every request, cookie and storage write against the catalogue (``checks``).

States, each in a fresh browser profile: no choice yet; Refuse all; Accept all; each permission
alone (the consent permissions the pages gate with ``data-consent`` or whose recipients and
cookies the catalogue maps); Global Privacy Control on (then Accept all: sale and sharing must
stay off on the next pages); and a withdrawal in the middle of a session. Pages: the URL and up
to ``max_pages - 1`` same-site links under its path.

Writes are recorded as they happen (a cookie set and removed again still counts), through a
script installed in every frame before the page's own; cookies a response sets are read from
its headers; what is left in the cookie jar and storage is read at the end of each phase.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_vocabulary import LegalBasis
from consentry.storefront import checks
from consentry.storefront.checks import Observation, Violation
from consentry.storefront.quiet import NetworkQuiet
from consentry.storefront.site_report import KIND

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
SETTLE_MS = 8000
BANNER = "#consentry-banner"

RECORDER = """(() => {
  const rec = (kind, name) => {
    try { window.__consentryRecord(kind, String(name), location.href); } catch (e) {}
  };
  const jar = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
  Object.defineProperty(Document.prototype, "cookie", {
    configurable: true,
    get() { return jar.get.call(this); },
    set(value) {
      const text = String(value);
      const gone = /expires=Thu, 01 Jan 1970|max-age=0/i.test(text);
      if (!gone) rec("cookie", text.split("=")[0].trim());
      jar.set.call(this, value);
    },
  });
  const setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (key, value) {
    rec("storage", key);
    return setItem.call(this, key, value);
  };
})();"""
GPC = """Object.defineProperty(Navigator.prototype, "globalPrivacyControl", {get: () => true});"""


class VerifyError(Exception):
    """The check could not run (no browser, the site did not answer)."""


@dataclass
class Phase:
    name: str
    allowed: frozenset[str]
    observations: list[Observation] = field(default_factory=list)


@dataclass
class Scenario:
    name: str
    phases: list[Phase] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, site_host: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 2),
            "phases": [
                {
                    "name": p.name,
                    "allowed": sorted(p.allowed),
                    "requests": sum(1 for o in p.observations if o.kind == "request"),
                    "third_party": sorted(
                        {
                            checks.host_of(o.name)
                            for o in p.observations
                            if o.kind == "request"
                            and o.name.startswith("http")
                            and checks.host_of(o.name) != site_host
                        }
                    ),
                    "cookies_and_storage": sorted(
                        {o.name for o in p.observations if o.kind != "request"}
                    ),
                }
                for p in self.phases
            ],
            "violations": [v.line() for v in self.violations],
        }


class Session:
    """One fresh browser profile; observations go to the current phase."""

    def __init__(self, browser: Any, scenario: Scenario, *, gpc: bool = False) -> None:
        self.scenario = scenario
        self.phase: Phase | None = None
        headers = {"Sec-GPC": "1"} if gpc else {}
        self.context = browser.new_context(extra_http_headers=headers, locale="en-GB")
        self.context.set_default_timeout(SETTLE_MS)
        self.context.expose_function("__consentryRecord", self._record_write)
        self.context.add_init_script(RECORDER)
        if gpc:
            self.context.add_init_script(GPC)
        self.context.on("request", self._record_request)
        self.context.on("response", self._record_response)
        self.network = NetworkQuiet(self.context)
        self.page = self.context.new_page()

    def _add(self, obs: Observation) -> None:
        if self.phase is not None:
            self.phase.observations.append(obs)

    def _record_write(self, kind: str, name: str, page: str) -> None:
        self._add(Observation(kind, name, page))

    def _record_request(self, request: Any) -> None:
        self._add(Observation("request", request.url, request.frame.url if request.frame else ""))

    def _record_response(self, response: Any) -> None:
        try:
            values = response.header_values("set-cookie")
        except Exception:  # noqa: BLE001 (a response the browser dropped has no headers)
            return
        for value in values:
            for line in value.split("\n"):
                name = line.split("=", 1)[0].strip()
                if name and "max-age=0" not in line.lower():
                    self._add(Observation("cookie", name, response.url))

    def start(self, name: str, allowed: frozenset[str]) -> None:
        self.end_phase()
        self.phase = Phase(name, allowed)
        self.scenario.phases.append(self.phase)

    def end_phase(self) -> None:
        """What is left in the jar and in the page's storage counts for the phase ending."""
        if self.phase is None:
            return
        for cookie in self.context.cookies():
            self._add(Observation("cookie", cookie["name"], f"(cookie jar, {cookie['domain']})"))
        try:
            keys = self.page.evaluate(
                "() => Object.keys(localStorage).concat(Object.keys(sessionStorage))"
            )
        except Exception:  # noqa: BLE001 (a page between navigations)
            keys = []
        for key in keys:
            self._add(Observation("storage", str(key), self.page.url))

    def settle(self) -> None:
        # False for a page that keeps polling: what it did by then is judged.
        self.network.wait(self.page, SETTLE_MS)
        for _ in range(3):  # a page that reloads itself (a withdrawal) is waited for again
            try:
                self.page.wait_for_load_state("load")
                self.page.evaluate(
                    "() => window.consentry ? window.consentry.ready.catch(() => 0) : 0"
                )
                break
            except Exception:  # noqa: BLE001 (the context went away in a navigation)
                self.page.wait_for_timeout(200)
        self.page.wait_for_timeout(300)

    def visit(self, url: str) -> None:
        response = self.page.goto(url, wait_until="load")
        if response is None or response.status >= 400:
            status = response.status if response is not None else "no answer"
            raise VerifyError(f"{url} answered {status}")
        self.settle()

    def banner(self, action: str) -> bool:
        """Click a banner button (refuse, accept, choose); False when there is no banner."""
        try:
            self.page.wait_for_selector(BANNER, timeout=SETTLE_MS)
        except Exception:  # noqa: BLE001
            self.scenario.violations.append(
                Violation(
                    self.scenario.name,
                    "banner",
                    "banner",
                    BANNER,
                    self.page.url,
                    "the first-visit choice did not appear",
                )
            )
            return False
        self.page.click(f"{BANNER} [data-action={action}]")
        return True

    def choose(self, granted: set[str]) -> None:
        """In the banner's second layer: allow exactly ``granted``, then save."""
        boxes = self.page.locator(f"{BANNER} input[type=checkbox]")
        for index in range(boxes.count()):
            box = boxes.nth(index)
            box.set_checked(box.get_attribute("name") in granted)
        self.page.click(f"{BANNER} form [type=submit]")
        self.page.wait_for_selector(BANNER, state="detached")
        self.settle()

    def after_choice(self) -> None:
        self.page.wait_for_selector(BANNER, state="detached")
        self.settle()

    def close(self) -> None:
        self.end_phase()
        self.context.close()


@contextmanager
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        raise VerifyError(f"Debian's Chromium is not at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _links(page: Any, start: str, limit: int) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    prefix = urlsplit(start).path.rsplit("/", 1)[0] + "/"
    origin = urlsplit(start).netloc
    out: list[str] = []
    paths = {urlsplit(start).path.rstrip("/")}
    for href in hrefs:
        url = urljoin(start, str(href)).split("#", 1)[0]
        parts = urlsplit(url)
        if parts.netloc != origin or not parts.path.startswith(prefix):
            continue
        if parts.path.rstrip("/") not in paths:
            paths.add(parts.path.rstrip("/"))
            out.append(url)
    return out[: max(limit, 0)]


def _gated(page: Any) -> set[str]:
    ids = page.eval_on_selector_all(
        "[data-consent]", "els => els.map(e => e.getAttribute('data-consent'))"
    )
    return {part for text in ids for part in str(text).split()}


def verify_site(
    url: str,
    catalogue: Catalogue,
    *,
    max_pages: int = 4,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run every scenario; the report (see ``site_report``) with every violation."""
    site_host = checks.host_of(url)
    started = datetime.now(UTC)
    clock = time.monotonic()
    none = checks.without_consent(catalogue)
    scenarios: list[Scenario] = []

    with chromium() as browser:

        def run(name: str, body: Callable[[Session], None], *, gpc: bool = False) -> None:
            scenario = Scenario(name)
            began = time.monotonic()
            session = Session(browser, scenario, gpc=gpc)
            try:
                body(session)
            finally:
                session.close()
            scenario.seconds = time.monotonic() - began
            for phase in scenario.phases:
                scenario.violations += checks.judge(
                    catalogue,
                    phase.allowed,
                    site_host,
                    phase.observations,
                    scenario=name,
                    phase=phase.name,
                )
            scenarios.append(scenario)
            verdict = f"{len(scenario.violations)} violation(s)" if scenario.violations else "ok"
            progress(f"  {name}: {verdict} ({scenario.seconds:.1f} s)")

        pages: list[str] = [url]
        gated: set[str] = set()

        def no_choice(s: Session) -> None:
            s.start("before any choice", none)
            s.visit(url)
            pages.extend(_links(s.page, url, max_pages - 1))
            gated.update(_gated(s.page))
            for page in pages[1:]:
                s.visit(page)
                gated.update(_gated(s.page))

        def decided(action: str, allowed: frozenset[str], label: str) -> Callable[[Session], None]:
            def body(s: Session) -> None:
                s.start("before any choice", none)
                s.visit(pages[0])
                s.start(label, allowed)
                if s.banner(action):
                    s.after_choice()
                    for page in pages[1:]:
                        s.visit(page)

            return body

        def alone(pid: str) -> Callable[[Session], None]:
            def body(s: Session) -> None:
                s.start("before any choice", none)
                s.visit(pages[0])
                s.start(f"only {pid}", checks.only(catalogue, pid))
                if s.banner("choose"):
                    s.choose({pid})
                    for page in pages[1:]:
                        s.visit(page)

            return body

        def gpc(s: Session) -> None:
            s.start("GPC, before any choice", none)
            s.visit(pages[0])
            s.start("GPC, just after Accept all", checks.everything(catalogue))
            if s.banner("accept"):
                s.after_choice()
                s.start("GPC, next pages", checks.without_sale_or_sharing(catalogue))
                for page in pages[1:] or pages:
                    s.visit(page)

        def withdrawal(s: Session) -> None:
            s.start("before any choice", none)
            s.visit(pages[0])
            s.start("after Accept all", checks.everything(catalogue))
            if not s.banner("accept"):
                return
            s.after_choice()
            s.visit(pages[-1])
            s.start("after withdrawing everything", none)
            s.page.evaluate("() => window.consentry.open('choose')")
            s.choose(set())
            for page in pages:
                s.visit(page)

        progress(f"verifying {url} with Chromium")
        run("no choice", no_choice)
        progress(f"  pages: {', '.join(pages)}")
        run("Refuse all", decided("refuse", none, "after Refuse all"))
        run("Accept all", decided("accept", checks.everything(catalogue), "after Accept all"))
        consent = {p.id for p in catalogue.permissions if p.legal_basis is LegalBasis.CONSENT}
        mapped = {
            p.id
            for p in catalogue.permissions
            if p.cookies or any(catalogue.recipients[r].domains for r in p.recipients)
        }
        for pid in sorted((gated | mapped) & consent):
            run(f"only {pid}", alone(pid))
        run("GPC on", gpc, gpc=True)
        run("withdrawal mid-session", withdrawal)

    violations = [v.line() for s in scenarios for v in s.violations]
    everything_seen = [o for s in scenarios for p in s.phases for o in p.observations]
    return {
        "kind": KIND,
        "site": url,
        "pages": pages,
        "catalogue_version": catalogue.catalogue_version,
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(time.monotonic() - clock, 2),
        "passed": not violations,
        "violations": violations,
        "unmapped_domains": checks.unmapped_domains(catalogue, site_host, everything_seen),
        "scenarios": [s.summary(site_host) for s in scenarios],
    }
