"""The page's server-side sessions: one row per signed-in browser, named by the SHA-256 of the
cookie's random nonce (a stolen database gives no usable cookie)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from consentry.storage.tables import web_sessions


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def open_session(
    conn: Connection, nonce: str, subject_id: str, now: datetime, expires_at: datetime
) -> None:
    conn.execute(
        delete(web_sessions).where(
            web_sessions.c.subject_id == subject_id, web_sessions.c.expires_at <= now
        )
    )
    conn.execute(
        insert(web_sessions).values(
            nonce_hash=_hash(nonce), subject_id=subject_id, created_at=now, expires_at=expires_at
        )
    )


def alive(conn: Connection, nonce: str, subject_id: str, now: datetime) -> bool:
    """Whether the session is still open: its row exists, for this subject, not expired."""
    row = conn.execute(
        select(web_sessions.c.subject_id, web_sessions.c.expires_at).where(
            web_sessions.c.nonce_hash == _hash(nonce)
        )
    ).first()
    return row is not None and row.subject_id == subject_id and row.expires_at > now


def end_all(conn: Connection, subject_id: str) -> int:
    """End every session of the subject (logout, erasure): their cookies answer signed-out."""
    ended = conn.execute(delete(web_sessions).where(web_sessions.c.subject_id == subject_id))
    return ended.rowcount
