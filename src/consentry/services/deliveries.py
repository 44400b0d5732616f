"""Webhook deliveries as people see them: the admin's dead letters and retries, and a subject's
"opt-out sent on <date>, acknowledged on <date>" per recipient."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.domain.catalogue import Catalogue
from consentry.services._ledger_io import utcnow
from consentry.storage import deliveries as store
from consentry.storage.database import Database
from consentry.storage.deliveries import DeliveryRow


class AlreadyAcknowledged(Exception):
    """The recipient already acknowledged this delivery: there is nothing to retry."""


@dataclass(frozen=True, slots=True)
class Delivery:
    row: DeliveryRow
    body: dict[str, Any]  # the JSON sent to the recipient

    @property
    def kind(self) -> str:
        return str(self.body.get("type", ""))


@dataclass(frozen=True, slots=True)
class RecipientDeliveries:
    """One recipient's deliveries for one subject, newest first."""

    recipient: str
    name: str
    country: str | None
    deliveries: list[Delivery]

    @property
    def latest(self) -> Delivery:
        return self.deliveries[0]


def delivery_of(row: DeliveryRow) -> Delivery:
    """A stored delivery with the JSON body it carries (empty when that is not an object)."""
    try:
        body = json.loads(row.payload)
    except ValueError:
        body = {}
    return Delivery(row, body if isinstance(body, dict) else {})


class DeliveryService:
    def __init__(
        self, db: Database, catalogue: Catalogue, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.clock = clock

    def listing(
        self, statuses: Sequence[str], limit: int = 100, after: int | None = None
    ) -> list[Delivery]:
        with self.db.read() as conn:
            return [delivery_of(r) for r in store.by_status(conn, statuses, limit, after)]

    def retry(self, delivery_id: int) -> Delivery | None:
        """Reopen a delivery for a fresh round of attempts, due now (None: no such delivery)."""
        with self.db.write() as conn:
            row = store.reopen(conn, delivery_id, self.clock())
        if row is not None and row.status == store.ACKNOWLEDGED:
            raise AlreadyAcknowledged(f"delivery {delivery_id} was acknowledged")
        return delivery_of(row) if row is not None else None

    def for_subject(self, subject_id: str) -> list[RecipientDeliveries]:
        with self.db.read() as conn:
            rows = store.for_subject(conn, subject_id)
        grouped: dict[str, list[Delivery]] = {}
        for row in rows:
            grouped.setdefault(row.recipient, []).append(delivery_of(row))
        out = []
        for name, items in grouped.items():
            recipient = self.catalogue.recipients.get(name)
            out.append(
                RecipientDeliveries(
                    recipient=name,
                    name=recipient.name if recipient else name,
                    country=recipient.country if recipient else None,
                    deliveries=items,
                )
            )
        return sorted(out, key=lambda r: r.name.lower())
