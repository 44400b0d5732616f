"""Pruning the outbox: published changes older than a cutoff are deleted, oldest first, as one
contiguous prefix of positions, and the highest deleted position is recorded as the feed's floor
(``feed_state.outbox_pruned_upto``). A feed cursor below the floor is then gone: the follower
gets 410 and reloads the snapshot, instead of silently missing what was pruned. The newest row
and every unpublished row (and everything after it) are always kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from consentry.storage.database import Database
from consentry.storage.tables import feed_state, outbox

FLOOR = "outbox_pruned_upto"


def pruned_upto(conn: Connection) -> int:
    """Every outbox position at or below this was pruned (0: nothing was)."""
    found = conn.execute(select(feed_state.c.position).where(feed_state.c.name == FLOOR)).scalar()
    return int(found or 0)


def prunable_upto(conn: Connection, cutoff: datetime) -> int:
    """The highest position that may go: below the first row to keep (unpublished, or created
    at or after ``cutoff``) and below the newest row."""
    newest = conn.execute(select(func.max(outbox.c.position))).scalar()
    if newest is None:
        return 0
    first_kept = conn.execute(
        select(func.min(outbox.c.position)).where(
            or_(outbox.c.published_at.is_(None), outbox.c.created_at >= cutoff)
        )
    ).scalar()
    keep_from = min(int(newest), int(first_kept) if first_kept is not None else int(newest))
    return keep_from - 1


def prune_step(conn: Connection, cutoff: datetime, now: datetime, batch: int) -> int:
    """Delete at most ``batch`` prunable rows (the oldest) and raise the floor to match.
    Returns how many rows went; 0 when nothing more may go."""
    floor = pruned_upto(conn)
    upto = min(prunable_upto(conn, cutoff), floor + batch)
    if upto <= floor:
        return 0
    removed = conn.execute(delete(outbox).where(outbox.c.position <= upto)).rowcount
    raised = conn.execute(
        update(feed_state).where(feed_state.c.name == FLOOR).values(position=upto, updated_at=now)
    ).rowcount
    if raised == 0:
        conn.execute(insert(feed_state).values(name=FLOOR, position=upto, updated_at=now))
    return int(removed)


def prune(
    db: Database,
    cutoff: datetime,
    now: datetime,
    batch: int = 10_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Prune in short transactions of ``batch`` rows. Returns (rows removed, floor);
    ``on_progress(removed so far, floor)`` is called after each transaction."""
    removed = 0
    while True:
        with db.write() as conn:
            step = prune_step(conn, cutoff, now, batch)
            floor = pruned_upto(conn)
        removed += step
        if step == 0:
            return removed, floor
        if on_progress is not None:
            on_progress(removed, floor)
