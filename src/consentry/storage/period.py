"""What the ledger recorded in a period, counted: the raw material of a period evidence pack.
Only pseudonymous and catalogue fields are read (no sealed personal field, no subject id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, distinct, func, select

from consentry.storage.tables import events


@dataclass(frozen=True, slots=True)
class PeriodCount:
    permission_id: str
    kind: str
    state: str
    notice_version: str
    locale: str | None
    source: str
    events: int
    subjects: int


@dataclass(frozen=True, slots=True)
class PeriodTotals:
    events: int
    subjects: int
    first: datetime | None
    last: datetime | None


def _in_period(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(events.c.occurred_at >= start, events.c.occurred_at < end)


def period_counts(conn: Connection, start: datetime, end: datetime) -> list[PeriodCount]:
    """Events with ``start <= occurred_at < end``, counted per permission, kind, state, notice
    version, language and source (with the number of distinct subjects in each group)."""
    keys = (
        events.c.permission_id,
        events.c.kind,
        events.c.state,
        events.c.notice_version,
        events.c.locale,
        events.c.source,
    )
    query = (
        select(*keys, func.count(), func.count(distinct(events.c.subject_ref)))
        .where(_in_period(start, end))
        .group_by(*keys)
        .order_by(*keys)
    )
    return [PeriodCount(*row) for row in conn.execute(query)]


def period_totals(conn: Connection, start: datetime, end: datetime) -> PeriodTotals:
    row = conn.execute(
        select(
            func.count(),
            func.count(distinct(events.c.subject_ref)),
            func.min(events.c.occurred_at),
            func.max(events.c.occurred_at),
        ).where(_in_period(start, end))
    ).one()
    return PeriodTotals(int(row[0]), int(row[1]), row[2], row[3])
