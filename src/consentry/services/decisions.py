"""The decision point's answer from a subject's full state: now, for many at once, or as it was
at a past moment.

The service reads states through ``SubjectStates`` (in the server: ``queries.SubjectQueries``,
the ledger's projection) and answers with the one decision rule (``domain.decisions.decide``
over the compiled catalogue), so it runs as well on states held in memory. The in-process
replica (``feed.server.ServerReplica``) answers most requests before they get here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from consentry.domain.decisions import CatalogueIndex, Decision, DecisionRequest, decide
from consentry.domain.state import SubjectState
from consentry.services._ledger_io import utcnow


class SubjectStates(Protocol):
    def state(self, subject_id: str) -> SubjectState: ...

    def states(self, subject_ids: Iterable[str]) -> dict[str, SubjectState]: ...

    def state_at(
        self, subject_id: str, permission_ids: Iterable[str], moment: datetime
    ) -> SubjectState: ...


@dataclass(eq=False)
class DecisionService:
    index: CatalogueIndex
    states: SubjectStates
    clock: Callable[[], datetime] = utcnow

    def decide(self, request: DecisionRequest) -> Decision:
        return decide(self.index, self.states.state(request.subject), request, self.clock())

    def decide_many(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        now = self.clock()
        states = self.states.states(r.subject for r in requests)
        return [decide(self.index, states[r.subject], r, now) for r in requests]

    def decide_at(self, request: DecisionRequest, moment: datetime) -> Decision:
        """The answer as it would have been at ``moment``: choices rebuilt from the ledger.
        (Device grants and the jurisdiction are taken as they are now.)"""
        candidates = {p.id for p in self.index.by_purpose.get(request.purpose, ())}
        then = self.states.state_at(request.subject, candidates, moment)
        return decide(self.index, then, request, moment)
