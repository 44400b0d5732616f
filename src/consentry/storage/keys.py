"""API key rows. Keys are random 256-bit secrets, so a plain SHA-256 of the key is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

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


def _record(row: Row[Any]) -> KeyRecord:
    return KeyRecord(
        row.key_id, row.name, frozenset(row.scopes.split()), row.created_at, row.revoked_at
    )


# Every authenticated request that is not answered from a cache runs this: built once.
_BY_HASH = select(api_keys).where(api_keys.c.key_hash == bindparam("key_hash"))


def find_by_hash(conn: Connection, key_hash: str) -> KeyRecord | None:
    """The key whose secret hashes to ``key_hash``, through SQLAlchemy (on PostgreSQL the
    request path asks ``Backend.find_key``, straight to the driver)."""
    row = conn.execute(_BY_HASH, {"key_hash": key_hash}).first()
    return _record(row) if row is not None else None


def find_by_id(conn: Connection, key_id: str) -> KeyRecord | None:
    row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    return _record(row) if row is not None else None


def all_keys(conn: Connection) -> list[KeyRecord]:
    return [_record(row) for row in conn.execute(select(api_keys).order_by(api_keys.c.created_at))]


def revoke(conn: Connection, key_id: str, now: datetime) -> bool:
    """Mark a key revoked; False when there is no such key or it was already revoked."""
    done = conn.execute(
        update(api_keys)
        .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return done.rowcount == 1
