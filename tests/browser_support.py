"""One way to run the browser tests: the demo served by uvicorn in a thread (SQLite file, the
demo catalogue, the demo customers), and Debian's Chromium through Playwright.

``demo_server`` serves the demo (with settings overridden as a test needs); ``running_shop``
adds the demo partners' port that serves the shop's tags; ``chromium`` launches the browser
(failing under ``CONSENTRY_REQUIRE_BROWSER=1`` when it is missing, else skipping)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, sync_playwright

from consentry.app import create_app
from consentry.bootstrap import Container
from consentry.config import Settings
from consentry.demo.boot import boot
from consentry.demo.customers import seed
from consentry.demo.partners import PartnerInbox, PartnerReceiver, partners
from live_server import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PARTNER_SECRET = "shop-tests-partner-secret"  # nosec B105 (a test value)


def require_chromium() -> None:
    """Skip (or fail, under CONSENTRY_REQUIRE_BROWSER=1) when Chromium is not installed."""
    if not CHROMIUM.exists():
        message = f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CONSENTRY_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, for the duration of the block."""
    require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serve_container(container: Container) -> Iterator[str]:
    """Serve ``container``'s app on a free local port; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(container),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ws="none",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the demo's server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class DemoServer:
    url: str
    container: Container

    @contextmanager
    def admin(self, name: str) -> Iterator[httpx.Client]:
        """An API client with a new admin key named ``name``."""
        key = self.container.keys.create(["admin"], name=name)
        with httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as api:
            yield api


@contextmanager
def demo_server(folder: Path, **settings: Any) -> Iterator[DemoServer]:
    """The demo with its customers seeded, on SQLite in ``folder``; ``settings`` override."""
    container = boot(
        Settings(database_url=f"sqlite:///{folder / 'consentry.db'}", demo=True, **settings)
    )
    try:
        seed(container)
        with serve_container(container) as url:
            yield DemoServer(url, container)
    finally:
        container.close()


@dataclass
class Shop:
    url: str  # the consentry server (the shop is at /demo/shop)
    partners_port: int
    container: Container
    api: httpx.Client  # admin key

    def partner_hosts(self) -> dict[str, str]:
        return {
            name: f"{name}.localhost:{self.partners_port}"
            for name in ("mesurine", "adlytics", "bannerfield")
        }

    def signals(self, subject: str, locale: str = "en") -> dict[str, Any]:
        response = self.api.get(f"/v1/subjects/{subject}/signals", params={"locale": locale})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def permissions(self, subject: str) -> dict[str, dict[str, Any]]:
        response = self.api.get(f"/v1/subjects/{subject}/permissions")
        response.raise_for_status()
        return {p["id"]: p for p in response.json()["permissions"]}

    def history(self, subject: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/v1/subjects/{subject}/history", params={"limit": 200})
        response.raise_for_status()
        return list(response.json()["events"])


@contextmanager
def running_shop(folder: Path) -> Iterator[Shop]:
    """The demo shop, its tags served by the demo partners' port."""
    receiver = PartnerReceiver(PartnerInbox(PARTNER_SECRET, {}), 0)
    receiver.start()
    try:
        with demo_server(
            folder,
            demo_partners_url=receiver.url,
            storefront_new_devices_per_minute=0,  # many fresh browser profiles from one address
        ) as server:
            assert partners(server.container.catalogue)
            partners_port = int(receiver.url.rsplit(":", 1)[1])
            with server.admin("shop-tests") as api:
                yield Shop(server.url, partners_port, server.container, api)
    finally:
        receiver.stop()
