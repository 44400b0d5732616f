"""Verifying the ledger: recompute every subject's hash chain against the recorded head."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

from consentry.domain.events import ChainBreak, Event, verify_chain
from consentry.storage import repository as repo
from consentry.storage.database import Database


@dataclass(frozen=True, slots=True)
class VerifyResult:
    subjects: int
    events: int
    broken: ChainBreak | None


class _Counted:
    def __init__(self, items: Iterator[Event]) -> None:
        self.items = items
        self.count = 0

    def __iter__(self) -> Iterator[Event]:
        for item in self.items:
            self.count += 1
            yield item


def verify(db: Database, subject_id: str | None = None) -> VerifyResult:
    subjects = events = 0
    with db.read() as conn:
        heads = list(repo.subject_heads(conn))
        if subject_id is not None:
            heads = [(s, h) for s, h in heads if s == subject_id]
        for sid, head_hash in heads:
            with closing(repo.chain(conn, sid)) as rows:
                counted = _Counted(rows)
                broken = verify_chain(counted, head_hash)
            subjects += 1
            events += counted.count
            if broken is not None:
                if not broken.subject_id:
                    broken = ChainBreak(sid, broken.seq, broken.event_id, broken.problem)
                return VerifyResult(subjects, events, broken)
    return VerifyResult(subjects, events, None)
