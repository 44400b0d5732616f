"""Access reports ("who used my data"): services report each use; a use the subject's state did
not allow at that moment is flagged as a violation. A service may also report a use it refrained
from because the answer was no: never a violation, counted apart ("we did not use ..."). Also the
auto-reset of unused grants."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from consentry.domain.catalogue_vocabulary import LegalBasis
from consentry.domain.decisions import Decision, DecisionRequest
from consentry.domain.errors import InvalidChange
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.services._ledger_io import utcnow
from consentry.services.consents import ConsentService
from consentry.services.decisions import DecisionService
from consentry.storage import uses as rows
from consentry.storage.database import Database
from consentry.storage.tables import uses as uses_table
from consentry.storage.uses import RefusedCount as RefusedCount

DEFAULT_RETENTION = timedelta(days=396)  # 13 months
DEFAULT_UNUSED = timedelta(days=365)  # 12 months
CLOCK_SKEW = timedelta(minutes=5)
REFUSED_WINDOW = timedelta(days=7)  # the page says "this week"


@dataclass(frozen=True, slots=True)
class UseReport:
    subject: str
    purpose: str
    categories: tuple[str, ...]
    recipient: str | None = None
    used_at: datetime | None = None
    outcome: rows.Outcome = rows.USED


@dataclass(frozen=True, slots=True)
class UseGroup:
    purpose: str
    recipient: str | None
    count: int
    first_used: datetime
    last_used: datetime
    services: tuple[str, ...]
    violations: int
    # The permission the latest use was judged under, and every data category reported.
    permission_id: str | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    accepted: int
    violations: int


@dataclass(eq=False)
class UsesService:
    db: Database
    consents: ConsentService
    decisions: DecisionService
    clock: Callable[[], datetime] = utcnow
    retention: timedelta = DEFAULT_RETENTION
    on_violation: Callable[[rows.UseRow], None] = field(
        default=lambda _row: None, init=False, repr=False
    )

    def record(self, reports: Sequence[UseReport], service: str) -> RecordOutcome:
        """Store reported uses, each judged against the subject's state when it happened."""
        now = self.clock()
        judged: list[rows.UseRow] = []
        for report in reports:
            used_at = report.used_at or now
            if used_at > now + CLOCK_SKEW:
                raise InvalidChange(f"used_at {used_at.isoformat()} is in the future")
            decision = self._decision_at(report, used_at)
            judged.append(
                rows.UseRow(
                    subject_id=report.subject,
                    purpose=report.purpose,
                    categories=report.categories,
                    recipient=report.recipient,
                    permission_id=decision.permission,
                    service=service,
                    used_at=used_at,
                    recorded_at=now,
                    allowed=decision.allowed,
                    reason=decision.reason.value,
                    outcome=report.outcome,
                )
            )
        with self.db.write() as conn:
            rows.insert_uses(conn, judged)
        flagged = [r for r in judged if r.violation]
        for row in flagged:
            self.on_violation(row)
        return RecordOutcome(len(judged), len(flagged))

    def _decision_at(self, report: UseReport, used_at: datetime) -> Decision:
        request = DecisionRequest(
            report.subject, report.purpose, tuple(report.categories), report.recipient
        )
        return self.decisions.decide_at(request, used_at)

    def for_subject(
        self, subject_id: str, limit: int = 1000
    ) -> tuple[list[UseGroup], list[rows.UseRow]]:
        """Uses grouped by purpose and recipient (most recent first), and the latest uses; the
        uses services refrained from are not among them (see ``refused``)."""
        with self.db.read() as conn:
            recent = rows.for_subject(conn, subject_id, limit)
        groups: dict[tuple[str, str | None], list[rows.UseRow]] = {}
        for row in recent:
            groups.setdefault((row.purpose, row.recipient), []).append(row)
        summary = [
            UseGroup(
                purpose=purpose,
                recipient=recipient,
                count=len(items),
                first_used=min(i.used_at for i in items),
                last_used=max(i.used_at for i in items),
                services=tuple(sorted({i.service for i in items})),
                violations=sum(1 for i in items if i.violation),
                permission_id=next((i.permission_id for i in items if i.permission_id), None),
                categories=tuple(dict.fromkeys(c for i in items for c in i.categories)),
            )
            for (purpose, recipient), items in groups.items()
        ]
        summary.sort(key=lambda g: g.last_used, reverse=True)
        return summary, recent[:50]

    def refused(self, subject_id: str, window: timedelta = REFUSED_WINDOW) -> list[RefusedCount]:
        """The uses services refrained from in the last ``window`` because the subject's
        choices said no, counted per permission and purpose, most recent first."""
        with self.db.read() as conn:
            return rows.refused_since(conn, subject_id, self.clock() - window)

    def last_used(
        self, subject_id: str, permission_id: str, before: datetime | None = None
    ) -> datetime | None:
        """When a use under this permission was last reported for the subject, before
        ``before`` if given (None: never reported, or purged). The page says since when a grant
        that auto-reset switched off had been unused."""
        query = select(func.max(uses_table.c.used_at)).where(
            uses_table.c.subject_id == subject_id,
            uses_table.c.permission_id == permission_id,
            uses_table.c.outcome == rows.USED,
        )
        if before is not None:
            query = query.where(uses_table.c.used_at <= before)
        with self.db.read() as conn:
            value: datetime | None = conn.execute(query).scalar()
        return value

    def violations(self, since: datetime | None = None, limit: int = 500) -> list[rows.UseRow]:
        with self.db.read() as conn:
            return rows.violations(conn, since, limit)

    def purge(self) -> int:
        """Drop access reports older than the retention period (13 months by default)."""
        with self.db.write() as conn:
            return rows.purge_before(conn, self.clock() - self.retention)

    def auto_reset(self, unused_for: timedelta = DEFAULT_UNUSED, batch: int = 1000) -> int:
        """Withdraw grants not used for ``unused_for`` (like a phone resetting the permissions
        of unused apps). Each reset is a ledger event with source "system" and reason
        "auto_reset", which the page shows to the subject."""
        cutoff = self.clock() - unused_for
        consents = [
            p.id
            for p in self.consents.index.catalogue.permissions
            if p.legal_basis is LegalBasis.CONSENT
        ]
        reset = 0
        while True:
            with self.db.read() as conn:
                stale = rows.stale_grants(conn, consents, cutoff, batch)
            for subject_id, permission_id in stale:
                self.consents.change(
                    subject_id,
                    [Change(permission_id, ChoiceState.DENIED, options={"reason": "auto_reset"})],
                    Context(source="system"),
                )
                reset += 1
            if len(stale) < batch:
                return reset
