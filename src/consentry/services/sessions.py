"""Page sessions kept on the server, so that logout and erasure end them everywhere at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from consentry.services._ledger_io import utcnow
from consentry.storage import sessions as rows
from consentry.storage.database import Database


class SessionService:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def open(self, nonce: str, subject_id: str, ttl_seconds: int) -> None:
        now = self.clock()
        with self.db.write() as conn:
            rows.open_session(conn, nonce, subject_id, now, now + timedelta(seconds=ttl_seconds))

    def alive(self, nonce: str, subject_id: str) -> bool:
        with self.db.read() as conn:
            return rows.alive(conn, nonce, subject_id, self.clock())

    def end_all(self, subject_id: str) -> int:
        with self.db.write() as conn:
            return rows.end_all(conn, subject_id)
