"""Audit a database after faults: the hash chains verify, the projection is what replaying the
ledger gives, every event has its outbox row. Importable as ``ledger_audit``."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from consentry.domain.events import EventKind
from consentry.services.ledger import verify
from consentry.storage.database import Database
from consentry.storage.tables import events, outbox, permission_states, subjects

CHOICES = (EventKind.PERMISSION_GRANTED.value, EventKind.PERMISSION_DENIED.value)


@dataclass
class Audit:
    subjects: int
    events: int
    outbox: int
    event_ids: set[str]
    # (subject, permission) -> (state, event_id) of the last event in the chain
    replayed: dict[tuple[str, str], tuple[str, str]]
    broken: str | None
    problems: list[str] = field(default_factory=list)

    def assert_consistent(self) -> None:
        assert self.broken is None, f"ledger does not verify: {self.broken}"
        assert not self.problems, "\n".join(self.problems[:20])
        assert self.outbox == self.events, f"{self.events} events but {self.outbox} outbox rows"


def audit(url: str) -> Audit:
    db = Database(url)
    try:
        result = verify(db)
        broken = None
        if result.broken is not None:
            b = result.broken
            broken = f"subject {b.subject} seq {b.seq}: {b.problem}"
        with db.read() as conn:
            names: dict[str, str | None] = {
                r.subject_ref: r.subject_id
                for r in conn.execute(select(subjects.c.subject_ref, subjects.c.subject_id))
            }
            rows = conn.execute(
                select(
                    events.c.subject_ref,
                    events.c.seq,
                    events.c.kind,
                    events.c.permission_id,
                    events.c.state,
                    events.c.event_id,
                ).order_by(events.c.subject_ref, events.c.seq)
            ).all()
            projected = {
                (r.subject_id, r.permission_id): (r.state, r.event_id)
                for r in conn.execute(select(permission_states)).all()
            }
            outbox_rows = int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())
    finally:
        db.dispose()
    replayed: dict[tuple[str, str], tuple[str, str]] = {}
    for row in rows:
        if row.kind in CHOICES:
            replayed[(str(names.get(row.subject_ref)), row.permission_id)] = (
                row.state,
                row.event_id,
            )
    problems = [
        f"{key}: projection {projected.get(key)} but the ledger replays to {want}"
        for key, want in replayed.items()
        if projected.get(key) != want
    ]
    problems += [f"{key}: projected without any event" for key in projected.keys() - replayed]
    return Audit(
        subjects=result.subjects,
        events=len(rows),
        outbox=outbox_rows,
        event_ids={r.event_id for r in rows},
        replayed=replayed,
        broken=broken,
        problems=problems,
    )
