"""Service API keys: create, verify, list and revoke."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from consentry.scopes import Scope, parse_scopes
from consentry.services._ledger_io import utcnow
from consentry.storage import keys as key_rows
from consentry.storage.database import Database

PREFIX = "csk_"


@dataclass(frozen=True, slots=True)
class ServiceKey:
    key_id: str
    name: str
    scopes: frozenset[Scope]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _well_formed(secret: str) -> bool:
    return secret.startswith(PREFIX) and len(secret) <= 200


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """Write only for a live (unrevoked) service key with this hash and one of ``scopes``."""

    key_hash: str
    scopes: frozenset[str]


def key_check(secret: str, scopes: frozenset[str]) -> KeyCheck | None:
    """What a write checks, in its own read, for this secret (None: it cannot be a key)."""
    return KeyCheck(_digest(secret), scopes) if _well_formed(secret) else None


class KeyService:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock
        # Called after a revocation, e.g. to drop caches of verified keys in this process.
        self.on_revoke: list[Callable[[], None]] = []

    def create(self, scopes: list[str], name: str = "") -> str:
        """Create a key; returns the secret, which is shown once and never stored."""
        parsed = parse_scopes(scopes)
        if not parsed:
            raise ValueError("a key needs at least one scope")
        key_id = secrets.token_hex(8)
        secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        with self.db.write() as conn:
            key_rows.insert_key(
                conn,
                key_id,
                _digest(secret),
                name or key_id,
                [s.value for s in parsed],
                self.clock(),
            )
        return secret

    def verify(self, secret: str) -> ServiceKey | None:
        if not _well_formed(secret):
            return None
        with self.db.read() as conn:
            record = self.db.backend.find_key(conn, _digest(secret))
        if record is None or record.revoked_at is not None:
            return None
        return ServiceKey(record.key_id, record.name, frozenset(Scope(s) for s in record.scopes))

    def records(self) -> list[key_rows.KeyRecord]:
        """Every key ever created (never the secret, which is not stored), oldest first."""
        with self.db.read() as conn:
            return key_rows.all_keys(conn)

    def revoke(self, key_id: str) -> key_rows.KeyRecord:
        """Revoke a key: from now on it authenticates nothing. Raises KeyError for an unknown
        id; revoking a revoked key changes nothing (its record tells when it was revoked)."""
        with self.db.write() as conn:
            key_rows.revoke(conn, key_id, self.clock())
            record = key_rows.find_by_id(conn, key_id)
        if record is None:
            raise KeyError(key_id)
        for hook in self.on_revoke:
            hook()
        return record
