"""Group commit of plain changes (``storage/change_batches.py``), on both databases: changes
waiting behind a batch are written together, in arrival order per subject; a subject whose
head another writer moved is refused alone; a failing change fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection

from consentry.bootstrap import Container, bootstrap
from consentry.domain import planning
from consentry.domain.errors import InvalidChange
from consentry.domain.planning import Change, ChangeOutcome, Context, Planned
from consentry.domain.state import ChoiceState
from consentry.storage.change_batches import ChangeBatcher
from consentry.storage.changes import Ask, Current, Head, SubjectWrite
from ledger_audit import audit
from support import make_settings

GRANT, DENY = ChoiceState.GRANTED, ChoiceState.DENIED
Plan = Callable[[Current], Planned]


@pytest.fixture
def wired(database_url: str) -> Iterator[Container]:
    c = bootstrap(make_settings(database_url))
    yield c
    c.close()


def _plan(c: Container, sid: str, pid: str, state: ChoiceState, seen: list[str]) -> Plan:
    """How the service plans a plain change, noting the order the batch planned it in."""
    perms = [c.consents.resolve(pid)]
    now = datetime.now(UTC)

    def plan(found: Current) -> Planned:
        seen.append(f"{sid}:{pid}:{state.value}")
        return planning.plan(
            sid, found.ref, [Change(pid, state)], perms, Context(), found, now, sealing=_none
        )

    return plan


def _none(*_: object) -> tuple[dict[str, object], None]:
    raise AssertionError("nothing to seal")


def _ask(c: Container, sid: str, pid: str) -> Ask:
    return Ask(sid, [c.consents.resolve(pid).id])


def _behind_one_batch(
    batcher: ChangeBatcher, first: tuple[Ask, Plan], others: list[tuple[Ask, Plan]]
) -> list[Future[ChangeOutcome]]:
    """Submit ``first`` as a batch of its own that waits until ``others`` are all queued
    behind it, so that they form the next batch together."""
    go = threading.Event()
    ask, plan = first

    def held(found: Current) -> Planned:
        go.wait(30)
        return plan(found)

    futures = [batcher.submit(ask, held, datetime.now(UTC))]
    while not futures[0].running():
        time.sleep(0.001)
    futures += [batcher.submit(a, p, datetime.now(UTC)) for a, p in others]
    go.set()
    for f in futures:
        f.exception(timeout=30)
    return futures


def test_changes_waiting_behind_a_batch_commit_as_one_batch_in_arrival_order(
    wired: Container, database_url: str
) -> None:
    batcher = wired.db.batcher()
    seen: list[str] = []
    first = (_ask(wired, "a", "recs"), _plan(wired, "a", "recs", GRANT, seen))
    others = [
        (_ask(wired, sid, pid), _plan(wired, sid, pid, state, seen))
        for sid, pid, state in [
            ("a", "recs", DENY),
            ("b", "ads", GRANT),
            ("a", "ads", GRANT),
            ("a", "recs", GRANT),
            ("b", "ads", DENY),
        ]
    ]
    before = batcher.batches
    futures = _behind_one_batch(batcher, first, others)
    outcomes = [f.result() for f in futures]
    assert batcher.batches - before == 2
    assert all(o.changed for o in outcomes)
    # each subject's chain holds its changes in the order they were submitted
    a = [f"{e.permission_id}:{e.state}" for e in reversed(wired.queries.history("a").events)]
    b = [f"{e.permission_id}:{e.state}" for e in reversed(wired.queries.history("b").events)]
    assert a == ["recs:granted", "recs:denied", "ads:granted", "recs:granted"]
    assert b == ["ads:granted", "ads:denied"]
    assert [s for s in seen if s.startswith("a:")] == [f"a:{x}" for x in a]
    projected = {v.id: v.state for v in wired.queries.permissions("a")}
    assert (projected["recs"], projected["ads"]) == ("granted", "granted")
    audit(database_url).assert_consistent()


def test_a_change_that_fails_in_a_batch_fails_alone(wired: Container, database_url: str) -> None:
    batcher = wired.db.batcher()
    seen: list[str] = []

    def refused(found: Current) -> Planned:
        raise InvalidChange("this change is refused")

    first = (_ask(wired, "x", "recs"), _plan(wired, "x", "recs", GRANT, seen))
    others = [
        (_ask(wired, "x", "ads"), _plan(wired, "x", "ads", GRANT, seen)),
        (_ask(wired, "y", "recs"), refused),
        (_ask(wired, "y", "ads"), _plan(wired, "y", "ads", GRANT, seen)),
    ]
    futures = _behind_one_batch(batcher, first, others)
    assert isinstance(futures[2].exception(), InvalidChange)
    assert [f.result().changed for i, f in enumerate(futures) if i != 2] == [
        ["recs"],
        ["ads"],
        ["ads"],
    ]
    assert [e.permission_id for e in wired.queries.history("y").events] == ["ads"]
    audit(database_url).assert_consistent()


def test_a_batch_whose_write_fails_is_written_change_by_change_and_only_the_faulty_fails(
    wired: Container, database_url: str
) -> None:
    taken = wired.consents.change("z", [Change("recs", GRANT)], Context()).entries[0].event_id
    assert taken is not None
    batcher = wired.db.batcher()
    seen: list[str] = []
    good = _plan(wired, "w", "ads", GRANT, seen)

    def duplicate(found: Current) -> Planned:
        """An event whose id is already in the ledger: the database refuses the batch's write."""
        planned = _plan(wired, "v", "recs", GRANT, seen)(found)
        return replace(planned, new=[replace(planned.new[0], event_id=taken)])

    first = (_ask(wired, "u", "recs"), _plan(wired, "u", "recs", GRANT, seen))
    futures = _behind_one_batch(
        batcher, first, [(_ask(wired, "v", "recs"), duplicate), (_ask(wired, "w", "ads"), good)]
    )
    assert futures[1].exception() is not None
    assert futures[0].result().changed == ["recs"] and futures[2].result().changed == ["ads"]
    assert wired.queries.history("v").events == []
    assert [e.permission_id for e in wired.queries.history("w").events] == ["ads"]
    audit(database_url).assert_consistent()


def test_write_many_refuses_only_the_subjects_whose_head_moved_since_the_read(
    wired: Container, database_url: str
) -> None:
    """Optimistic concurrency per subject: another writer moves "moved"'s head between the
    batch's read and its write; "still" is written, "moved" has nothing written."""
    wired.consents.change("moved", [Change("recs", GRANT)], Context())
    wired.consents.change("still", [Change("recs", GRANT)], Context())
    backend = wired.db.backend
    now = datetime.now(UTC)
    with wired.db.read() as conn:
        found = backend.current_many(
            conn, [_ask(wired, "moved", "ads"), _ask(wired, "still", "ads")]
        )
    wired.consents.change("moved", [Change("recs", DENY)], Context())  # the other writer
    writes = []
    for sid, read in zip(("moved", "still"), found, strict=True):
        planned = _plan(wired, sid, "ads", GRANT, [])(read)
        writes.append(SubjectWrite(sid, read.ref, read.head, planned.new, planned.projected, now))
    with wired.db.write() as conn:
        lost = backend.write_many(conn, writes)
    assert lost == {"moved"}
    assert [e.permission_id for e in wired.queries.history("moved").events] == ["recs", "recs"]
    assert [e.permission_id for e in wired.queries.history("still").events] == ["ads", "recs"]
    audit(database_url).assert_consistent()


def test_a_subject_seen_first_by_two_writers_at_once_is_created_by_one(
    wired: Container, database_url: str
) -> None:
    """Two batches both read "new" as never seen; the second's insert loses and writes nothing."""
    backend = wired.db.backend
    now = datetime.now(UTC)
    writes = []
    for _ in range(2):
        with wired.db.read() as conn:
            (read,) = backend.current_many(conn, [_ask(wired, "new", "recs")])
        assert read.head == Head(read.head.seq, read.head.hash, False)
        planned = _plan(wired, "new", "recs", GRANT, [])(read)
        writes.append(SubjectWrite("new", read.ref, read.head, planned.new, planned.projected, now))
    with wired.db.write() as conn:
        assert backend.write_many(conn, writes[:1]) == set()
    with wired.db.write() as conn:
        assert backend.write_many(conn, writes[1:]) == {"new"}
    assert len(wired.queries.history("new").events) == 1
    audit(database_url).assert_consistent()


@pytest.mark.postgres
def test_a_race_lost_to_another_process_is_retried_and_lands_after_the_winner(
    postgres_url: str,
) -> None:
    """Another writer (its own connections, as another process's) changes "r" between the
    batch's read and its write: the batch writes nothing for "r", and ConsentService.change
    reads again and lands its change on top of the other's. (On SQLite a batch holds the
    database's write lock from its read to its commit, so no other writer gets in between.)"""
    wired = bootstrap(make_settings(postgres_url))
    other = bootstrap(make_settings(postgres_url))
    try:
        wired.consents.change("r", [Change("recs", GRANT)], Context())
        real = wired.db.backend
        lost: list[set[str]] = []

        class RacedOnce:
            """The real backend; before its first batch write, the other writer goes first."""

            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

            def write_many(self, conn: Connection, writes: list[SubjectWrite]) -> set[str]:
                if not lost:
                    other.consents.change("r", [Change("ads", GRANT)], Context())
                lost.append(real.write_many(conn, writes))
                return lost[-1]

        wired.db.backend = RacedOnce()  # type: ignore[assignment]
        outcome = wired.consents.change("r", [Change("recs", DENY)], Context())
        wired.db.backend = real
        assert lost == [{"r"}, set()] and outcome.changed == ["recs"]
        chain = [
            f"{e.permission_id}:{e.state}" for e in reversed(other.queries.history("r").events)
        ]
        assert chain == ["recs:granted", "ads:granted", "recs:denied"]
    finally:
        wired.close()
        other.close()
    audit(postgres_url).assert_consistent()
