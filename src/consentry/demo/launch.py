"""What ``consentry demo`` does before serving: the SQLite file, the partners' receiver (and the
secret both sides sign with), the demo customers, the API keys and the simulated services."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from consentry.bootstrap import Container
from consentry.demo.customers import seed
from consentry.demo.partners import SECRET_ENV, Outcome, PartnerInbox, PartnerReceiver
from consentry.demo.simulated import DEMO_SERVICES, SimulatedServices

DEMO_KEY_SCOPES = ["decide", "subjects:read", "subjects:write"]
SERVICE_KEY_SCOPES = ["decide", "uses:write"]


def delete_database(database: Path) -> list[str]:
    """Delete the demo's SQLite file and its journal files (WAL, shared memory); returns the
    paths deleted. An ``OSError`` carries the path it could not delete (``filename``)."""
    removed = []
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(str(path))
    return removed


def use_database(database: Path) -> str:
    """Point this process and the server it starts at the demo's SQLite file, in demo mode."""
    url = f"sqlite:///{database}"
    os.environ["CONSENTRY_DATABASE_URL"] = url
    os.environ["CONSENTRY_DEMO"] = "true"
    return url


def partner_secret() -> str:
    """The secret the server signs the partners' webhooks with, and they check with."""
    secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
    os.environ[SECRET_ENV] = secret
    return secret


def open_receiver(
    secret: str, names: Mapping[str, str], port: int, on_outcome: Callable[[Outcome], None]
) -> PartnerReceiver:
    """Bind the partners' receiver (not serving yet) and point the server's catalogue at it.
    Raises ``OSError`` or ``OverflowError`` when the port cannot be used."""
    receiver = PartnerReceiver(PartnerInbox(secret, names), port, on_outcome=on_outcome)
    os.environ["CONSENTRY_DEMO_PARTNERS_URL"] = receiver.url
    return receiver


@dataclass(frozen=True, slots=True)
class Prepared:
    customers: list[str]
    key: str  # a service key with DEMO_KEY_SCOPES, to try the API with
    simulated: SimulatedServices  # not started yet


def prepare(container: Container, base: str) -> Prepared:
    """Seed the demo customers, create the demo's keys, and set up the simulated services
    (each with its own key) against the server at ``base``."""
    customers = seed(container)
    key = container.keys.create(DEMO_KEY_SCOPES, name="demo")
    service_keys = {
        s.name: container.keys.create(SERVICE_KEY_SCOPES, name=s.name) for s in DEMO_SERVICES
    }
    simulated = SimulatedServices(base, container.catalogue, service_keys, customers)
    return Prepared(customers, key, simulated)
