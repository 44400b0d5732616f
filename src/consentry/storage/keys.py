"""API key rows. Keys are random 256-bit secrets, so a plain SHA-256 of the key is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from consentry.storage.tables import api_keys


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None


def insert_key(
    conn: Connection, key_id: str, key_hash: str, name: str, scopes: list[str], now: datetime
) -> None:
    conn.execute(
        insert(api_keys).values(
            key_id=key_id,
            key_hash=key_hash,
            name=name,
            scopes=" ".join(sorted(scopes)),
            created_at=now,
            revoked_at=None,
        )
    )


def find_by_hash(conn: Connection, key_hash: str) -> KeyRecord | None:
    row = conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
    if row is None:
        return None
    return KeyRecord(
        row.key_id, row.name, frozenset(row.scopes.split()), row.created_at, row.revoked_at
    )
