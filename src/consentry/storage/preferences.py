"""The customer's stored page settings: one row per subject (language, IANA time zone)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from consentry.storage.tables import subject_preferences as table


@dataclass(frozen=True, slots=True)
class Preferences:
    locale: str | None = None
    time_zone: str | None = None


def get(conn: Connection, subject_id: str) -> Preferences | None:
    row = conn.execute(
        select(table.c.locale, table.c.time_zone).where(table.c.subject_id == subject_id)
    ).first()
    return Preferences(row.locale, row.time_zone) if row is not None else None


def put(conn: Connection, subject_id: str, prefs: Preferences, now: datetime) -> None:
    """Store ``prefs`` as the subject's (a row with neither value is removed). Two writers
    inserting at once: the second one's insert fails on the key and its transaction retries."""
    if prefs.locale is None and prefs.time_zone is None:
        forget(conn, subject_id)
        return
    values = {"locale": prefs.locale, "time_zone": prefs.time_zone, "updated_at": now}
    moved = conn.execute(update(table).where(table.c.subject_id == subject_id).values(**values))
    if moved.rowcount == 0:
        conn.execute(insert(table).values(subject_id=subject_id, **values))


def forget(conn: Connection, subject_id: str) -> int:
    """Remove the subject's row (erasure); how many rows went."""
    return conn.execute(delete(table).where(table.c.subject_id == subject_id)).rowcount
