"""The demo shop served for browser tests: uvicorn in a thread (SQLite file, the demo catalogue,
demo customers) and the demo partners' port serving the shop's tags."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.demo_partners import PartnerInbox, PartnerReceiver, partners
from consentry.http.app import create_app
from consentry.services.demo import seed

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
PARTNER_SECRET = "shop-tests-partner-secret"  # nosec B105 (a test value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    receiver = PartnerReceiver(PartnerInbox(PARTNER_SECRET, {}), 0)
    receiver.start()
    settings = Settings(
        database_url=f"sqlite:///{folder / 'consentry.db'}",
        demo=True,
        demo_partners_url=receiver.url,
        storefront_new_devices_per_minute=0,  # many fresh browser profiles from one address
    )
    container = bootstrap(settings)
    seed(container)
    assert partners(container.catalogue)
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
            raise AssertionError("the shop's server did not start")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    admin = container.keys.create(["admin"], name="shop-tests")
    partners_port = int(receiver.url.rsplit(":", 1)[1])
    try:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=10
        ) as api:
            yield Shop(url, partners_port, container, api)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        receiver.stop()
        container.close()
