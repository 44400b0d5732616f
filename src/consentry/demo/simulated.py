"""Simulated platform services for ``consentry demo``: a recommendations engine, personalised
ads, e-mail marketing and a partner feed. Each embeds the SDK (``consentry.sdk.Consentry``),
asks before using a demo customer's data, and reports each use it makes (``report_use``), so a
newcomer who switches a permission off on the Permissions page sees that service's uses stop on
the "Who used my data" tab. When the answer is no, it reports the use it refrained from
(``outcome="refrained"``), and the tab counts them: "we did not use ... because it is off".

Uses only the SDK and the catalogue: it is a client of the server like any real service."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from consentry.domain.catalogue import Catalogue
from consentry.sdk import Consentry


@dataclass(frozen=True, slots=True)
class DemoService:
    name: str  # also the label of its API key: what customers read on "Who used my data"
    permission: str  # the catalogue permission whose data it uses
    recipient: str | None = None  # who receives the data, when it leaves the controller


DEMO_SERVICES = (
    DemoService("recommendations-service", "recommendations.personalised"),
    DemoService("ads-service", "ads.personalised"),
    DemoService("email-marketing-service", "marketing.email", "postbode"),
    DemoService("partner-feed", "sharing.ad_partners", "adlytics"),
)


@dataclass(frozen=True, slots=True)
class _Use:
    purpose: str
    categories: tuple[str, ...]
    recipient: str | None


class SimulatedServices:
    """Every ``every`` seconds, each service checks each subject and reports the uses it makes,
    and those it refrained from.
    ``keys`` maps a service name to its API key (scopes ``decide`` and ``uses:write``)."""

    def __init__(
        self,
        base_url: str,
        catalogue: Catalogue,
        keys: dict[str, str],
        subjects: Sequence[str],
        services: Sequence[DemoService] = DEMO_SERVICES,
        every: float = 5.0,
    ) -> None:
        self.base_url = base_url
        self.keys = keys
        self.subjects = tuple(subjects)
        self.every = every
        self.uses: dict[str, _Use] = {}
        for service in services:
            perm = catalogue.permission(service.permission)
            if perm is None or service.name not in keys:
                continue
            categories = tuple(c for c in perm.categories if catalogue.categories[c].device is None)
            if not categories:
                continue  # services never read device data in the demo
            recipient = service.recipient if service.recipient in perm.recipients else None
            self.uses[service.name] = _Use(perm.purpose, categories, recipient)
        self.clients: dict[str, Consentry] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def connect(self) -> None:
        for name in self.uses:
            self.clients[name] = Consentry(self.base_url, self.keys[name])

    def tick(self) -> dict[str, int]:
        """One round: how many uses each service made (each is reported, and so is each use it
        refrained from)."""
        made: dict[str, int] = {}
        for name, use in self.uses.items():
            client = self.clients[name]
            made[name] = 0
            for subject in self.subjects:
                if client.allows(subject, use.purpose, use.categories, use.recipient):
                    client.report_use(subject, use.purpose, use.categories, use.recipient)
                    made[name] += 1
                else:
                    client.report_use(
                        subject, use.purpose, use.categories, use.recipient, outcome="refrained"
                    )
        return made

    def flush(self) -> None:
        for client in self.clients.values():
            client.flush(5.0)

    def start(self) -> None:
        """Run in a daemon thread: wait for the server, connect, then tick until stopped."""
        self._thread = threading.Thread(target=self._run, name="demo-services", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            self._stop.wait(0.2)
        else:
            return
        self.connect()
        while not self._stop.wait(self.every):
            self.tick()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for client in self.clients.values():
            client.close()
