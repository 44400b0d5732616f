"""The projection held to the ledger on every read: a ``permission_states`` row is answered only
when it is what the subject's chain says (the last event on that permission). A row that
disagrees (edited in the database, or left behind) is not believed: the answer comes from the
chain, and the disagreement is logged under the chain's reference (never the subject id)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import Connection, and_, func, select

from consentry.domain.events import EventKind
from consentry.domain.state import Choice
from consentry.storage import pseudonyms
from consentry.storage.rows import choice_of_event
from consentry.storage.tables import events

log = logging.getLogger("consentry.projection")
_CHOICES = (EventKind.PERMISSION_GRANTED.value, EventKind.PERMISSION_DENIED.value)


def _latest(conn: Connection, subject_id: str) -> dict[str, Choice]:
    """Each permission's last choice in the subject's live chain."""
    ref = pseudonyms.ref_of(subject_id)
    last = (
        select(events.c.permission_id, func.max(events.c.seq).label("seq"))
        .where(events.c.subject_ref == ref, events.c.kind.in_(_CHOICES))
        .group_by(events.c.permission_id)
        .subquery()
    )
    query = select(events).join(
        last,
        and_(
            events.c.subject_ref == ref,
            events.c.permission_id == last.c.permission_id,
            events.c.seq == last.c.seq,
        ),
    )
    return {row.permission_id: choice_of_event(row) for row in conn.execute(query)}


def _same(row: Choice, chain: Choice) -> bool:
    return (row.state, row.notice_version, row.event_id, row.expires_at) == (
        chain.state,
        chain.notice_version,
        chain.event_id,
        chain.expires_at,
    )


def checked(conn: Connection, subject_id: str, rows: Mapping[str, Choice]) -> dict[str, Choice]:
    """``rows`` (the projection of the subject) as the chain confirms them: a row that
    disagrees is replaced by the chain's choice (its options are then unknown: none), a row
    the chain has no event for is dropped, and a choice missing from the projection added."""
    chain = _latest(conn, subject_id)
    if len(chain) == len(rows) and all(
        pid in chain and _same(row, chain[pid]) for pid, row in rows.items()
    ):
        return dict(rows)
    answer: dict[str, Choice] = {}
    for pid, truth in chain.items():
        row = rows.get(pid)
        answer[pid] = row if row is not None and _same(row, truth) else truth
    wrong = sorted(p for p in set(rows) | set(chain) if rows.get(p) is not answer.get(p))
    if wrong:
        with_ref = pseudonyms.resolve(conn, subject_id) or "-"
        log.warning(
            "projection disagrees with the ledger for chain %s on %s: answering from the chain "
            "(run `consentry ledger verify`)",
            with_ref,
            ", ".join(wrong),
        )
    return answer
