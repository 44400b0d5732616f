"""The read side of a subject's permissions: their state, each permission as they have it now,
their history page by page and one event of it (opened: personal fields unsealed)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.decisions import CatalogueIndex
from consentry.domain.errors import InvalidChange
from consentry.domain.events import Event
from consentry.domain.state import SubjectState
from consentry.domain.views import PermissionView, view
from consentry.services._ledger_io import opened, utcnow
from consentry.storage import pseudonyms
from consentry.storage import repository as repo
from consentry.storage.database import Database


@dataclass(frozen=True, slots=True)
class HistoryPage:
    events: list[Event]
    next_cursor: str | None


@dataclass(eq=False)
class SubjectQueries:
    db: Database
    index: CatalogueIndex
    clock: Callable[[], datetime] = utcnow

    # -- state (also what the decision service reads: ``decisions.SubjectStates``) -----------
    def state(self, subject_id: str) -> SubjectState:
        with self.db.read() as conn:
            return repo.load_state(conn, subject_id)

    def states(self, subject_ids: Iterable[str]) -> dict[str, SubjectState]:
        """The state of each subject, read together."""
        states: dict[str, SubjectState] = {}
        with self.db.read() as conn:
            for subject_id in subject_ids:
                if subject_id not in states:
                    states[subject_id] = repo.load_state(conn, subject_id)
        return states

    def state_at(
        self, subject_id: str, permission_ids: Iterable[str], moment: datetime
    ) -> SubjectState:
        """The subject's choices on these permissions as they were at ``moment``, rebuilt from
        the ledger. (Device grants and the jurisdiction are taken as they are now.)"""
        with self.db.read() as conn:
            state = repo.load_state(conn, subject_id)
            past = {
                pid: choice
                for pid in permission_ids
                if (choice := repo.choice_at(conn, subject_id, pid, moment)) is not None
            }
        return SubjectState(state.subject_id, state.jurisdiction, past, state.devices)

    def chain_ref(self, subject_id: str) -> str | None:
        """The ledger's random reference of the subject's live chain (None: no chain yet)."""
        with self.db.read() as conn:
            return pseudonyms.resolve(conn, subject_id)

    # -- permissions and history -------------------------------------------------------------
    def permissions(self, subject_id: str) -> list[PermissionView]:
        state = self.state(subject_id)
        now = self.clock()
        return [
            view(perm, state.choices.get(perm.id), state, now)
            for perm in self.index.catalogue.permissions
        ]

    def history(self, subject_id: str, limit: int = 50, cursor: str | None = None) -> HistoryPage:
        before: int | None = None
        if cursor is not None:
            if not cursor.isdigit():
                raise InvalidChange(f"invalid cursor {cursor!r}")
            before = int(cursor)
        with self.db.read() as conn:
            items = repo.history(conn, subject_id, limit + 1, before)
            key = repo.subject_key(conn, items[0].subject_ref) if items else None
        more = len(items) > limit
        items = [opened(e, key) for e in items[:limit]]
        return HistoryPage(items, str(items[-1].seq) if more and items else None)

    def event(self, subject_id: str, event_id: str) -> tuple[Event, Event | None] | None:
        """One of the subject's events, readable, with the previous event on the same
        permission (it tells a withdrawal from a refusal); None when the subject has none."""
        with self.db.read() as conn:
            found = repo.find_event(conn, subject_id, event_id)
            if found is None:
                return None
            previous = repo.previous_on_permission(conn, found) if found.permission_id else None
            key = repo.subject_key(conn, found.subject_ref)
        return opened(found, key), (opened(previous, key) if previous else None)
