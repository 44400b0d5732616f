"""Idempotent changes: a change sent again with the same ``Idempotency-Key`` gets the first
answer back and writes nothing; the same key with another request is refused.

The record is read and written in the change's own transaction (``ConsentService.change``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from consentry.domain.errors import IdempotencyMismatch
from consentry.domain.planning import ChangeOutcome
from consentry.domain.views import view_from_json, view_to_json
from consentry.storage import repository as repo


@dataclass(frozen=True, slots=True)
class Idempotency:
    credential: str
    key: str
    fingerprint: str


def replay(conn: Connection, idem: Idempotency) -> ChangeOutcome | None:
    """The first answer given to this key, or None when the key is new; IdempotencyMismatch
    when it was used with another request."""
    found = repo.find_idempotent(conn, idem.credential, idem.key)
    if found is None:
        return None
    fingerprint, body = found
    if fingerprint != idem.fingerprint:
        raise IdempotencyMismatch()
    return outcome_from_json(body)


def remember(
    conn: Connection, idem: Idempotency, outcome: ChangeOutcome, now: datetime, subject_id: str
) -> None:
    repo.save_idempotent(
        conn,
        idem.credential,
        idem.key,
        idem.fingerprint,
        outcome_to_json(outcome),
        now,
        subject_id,
    )


def outcome_to_json(outcome: ChangeOutcome) -> dict[str, Any]:
    return {"entries": [view_to_json(v) for v in outcome.entries], "changed": outcome.changed}


def outcome_from_json(body: Mapping[str, Any]) -> ChangeOutcome:
    entries = [view_from_json(e) for e in body["entries"]]
    return ChangeOutcome(entries, list(body["changed"]), replayed=True)
