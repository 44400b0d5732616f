"""Rows of access reports: insert in bulk, read per subject, count refusals, list violations,
purge. A row is a use (``outcome`` "used") or a use the service refrained from ("refrained")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Row, delete, func, insert, select

from consentry.storage.rows import record_of
from consentry.storage.tables import permission_states, uses

Outcome = Literal["used", "refrained"]
USED: Outcome = "used"
REFRAINED: Outcome = "refrained"


@dataclass(frozen=True, slots=True)
class UseRow:
    subject_id: str
    purpose: str
    categories: tuple[str, ...]
    recipient: str | None
    permission_id: str | None
    service: str
    used_at: datetime
    recorded_at: datetime
    allowed: bool  # what the subject's choices said at ``used_at``
    reason: str
    outcome: Outcome = USED

    @property
    def violation(self) -> bool:
        """Used although the subject's choices did not allow it (a refrained use never is)."""
        return self.outcome == USED and not self.allowed


@dataclass(frozen=True, slots=True)
class RefusedCount:
    """How often services refrained from a use the subject's choices did not allow."""

    permission_id: str | None
    purpose: str
    count: int
    last_at: datetime


def insert_uses(conn: Connection, rows: Sequence[UseRow]) -> None:
    if not rows:
        return
    conn.execute(
        insert(uses),
        [
            {
                "subject_id": r.subject_id,
                "purpose": r.purpose,
                "categories": " ".join(r.categories),
                "recipient": r.recipient,
                "permission_id": r.permission_id,
                "service": r.service,
                "used_at": r.used_at,
                "recorded_at": r.recorded_at,
                "allowed": r.allowed,
                "reason": r.reason,
                "outcome": r.outcome,
            }
            for r in rows
        ],
    )


def _row(row: Row[Any]) -> UseRow:
    return record_of(
        UseRow, row, categories=tuple(row.categories.split()), allowed=bool(row.allowed)
    )


def for_subject(conn: Connection, subject_id: str, limit: int) -> list[UseRow]:
    """The subject's latest uses (not the refrained ones), most recent first."""
    query = (
        select(uses)
        .where(uses.c.subject_id == subject_id, uses.c.outcome == USED)
        .order_by(uses.c.used_at.desc(), uses.c.use_id.desc())
        .limit(limit)
    )
    return [_row(r) for r in conn.execute(query)]


def page_for_subject(
    conn: Connection, subject_id: str, after_use_id: int, limit: int
) -> list[tuple[int, UseRow]]:
    """The subject's uses in the order they were recorded, a page after ``after_use_id``:
    for streaming an export without loading every report."""
    query = (
        select(uses)
        .where(uses.c.subject_id == subject_id, uses.c.use_id > after_use_id)
        .order_by(uses.c.use_id)
        .limit(limit)
    )
    return [(int(r.use_id), _row(r)) for r in conn.execute(query)]


def violations(conn: Connection, since: datetime | None, limit: int) -> list[UseRow]:
    query = select(uses).where(uses.c.allowed.is_(False), uses.c.outcome == USED)
    if since is not None:
        query = query.where(uses.c.recorded_at >= since)
    query = query.order_by(uses.c.recorded_at.desc(), uses.c.use_id.desc()).limit(limit)
    return [_row(r) for r in conn.execute(query)]


def refused_since(conn: Connection, subject_id: str, since: datetime) -> list[RefusedCount]:
    """Uses refrained from since ``since`` because the subject's choices said no, counted per
    permission and purpose, the most recent first. A service that refrained although the answer
    was yes is not counted: the customer's "no" was not the cause."""
    last = func.max(uses.c.used_at).label("last_at")
    query = (
        select(uses.c.permission_id, uses.c.purpose, func.count().label("times"), last)
        .where(
            uses.c.subject_id == subject_id,
            uses.c.used_at >= since,
            uses.c.outcome == REFRAINED,
            uses.c.allowed.is_(False),
        )
        .group_by(uses.c.permission_id, uses.c.purpose)
        .order_by(last.desc(), uses.c.purpose)
    )
    return [
        RefusedCount(r.permission_id, r.purpose, int(r.times), r.last_at)
        for r in conn.execute(query)
    ]


def purge_before(conn: Connection, cutoff: datetime) -> int:
    return int(conn.execute(delete(uses).where(uses.c.used_at < cutoff)).rowcount)


def erase_subject(conn: Connection, subject_id: str) -> int:
    return int(conn.execute(delete(uses).where(uses.c.subject_id == subject_id)).rowcount)


def stale_grants(
    conn: Connection, permission_ids: Sequence[str], cutoff: datetime, limit: int
) -> list[tuple[str, str]]:
    """(subject, permission) granted before ``cutoff`` and not used since (or never)."""
    last_use = (
        select(func.max(uses.c.used_at))
        .where(
            uses.c.subject_id == permission_states.c.subject_id,
            uses.c.permission_id == permission_states.c.permission_id,
            uses.c.outcome == USED,
        )
        .scalar_subquery()
    )
    query = (
        select(permission_states.c.subject_id, permission_states.c.permission_id)
        .where(
            permission_states.c.state == "granted",
            permission_states.c.permission_id.in_(list(permission_ids)),
            permission_states.c.updated_at < cutoff,
            (last_use.is_(None)) | (last_use < cutoff),
        )
        .order_by(permission_states.c.subject_id, permission_states.c.permission_id)
        .limit(limit)
    )
    return [(r.subject_id, r.permission_id) for r in conn.execute(query)]
