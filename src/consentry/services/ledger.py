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
    """Check every chain (or one subject's). A break names the subject by id when the subject
    still has one, by ledger reference when it was erased."""
    subjects = events = 0
    with db.read() as conn:
        for head in list(repo.subject_heads(conn, subject_id)):
            with closing(repo.chain(conn, head.ref)) as rows:
                counted = _Counted(rows)
                broken = verify_chain(counted, head.head_hash)
            subjects += 1
            events += counted.count
            if broken is not None:
                name = head.subject_id or f"ref:{head.ref}"
                return VerifyResult(
                    subjects, events, ChainBreak(name, broken.seq, broken.event_id, broken.problem)
                )
    return VerifyResult(subjects, events, None)
