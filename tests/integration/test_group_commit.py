"""Concurrent changes: per-subject order and optimistic concurrency under concurrent writers
(both databases), and group commit's batching on SQLite: one transaction per batch, each
change acknowledged after its batch commits, a failing change failing alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from consentry.bootstrap import Container, bootstrap
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.storage.group_commit import GroupCommit
from consentry.storage.tables import devices
from ledger_audit import audit
from support import make_settings

PERMISSIONS = ("recs", "ads", "email", "sale")


def test_concurrent_writers_keep_each_subjects_order_and_lose_nothing(
    container: Container, database_url: str
) -> None:
    """8 threads in this process and 2 on a second container (another writer, as another
    process would be) change the same 4 subjects at once; every acknowledged change is in the
    ledger once, and each writer's changes are in its subjects' chains in the order it made
    them (optimistic concurrency retried every lost race)."""
    other = bootstrap(make_settings(database_url))
    sent: dict[tuple[int, str, str], list[str]] = {}  # (writer, subject, permission) -> events
    acked: list[str] = []
    lock = threading.Lock()

    def writer(n: int, service: Any) -> None:
        pid = PERMISSIONS[n % len(PERMISSIONS)]
        for i in range(30):
            sid = f"shared-{i % 4}"
            state = ChoiceState.GRANTED if (i // 4 + n) % 2 == 0 else ChoiceState.DENIED
            outcome = service.change(sid, [Change(pid, state)], Context(source="api"))
            with lock:
                if outcome.changed:
                    acked.append(outcome.entries[0].event_id)
                    sent.setdefault((n, sid, pid), []).append(outcome.entries[0].event_id)

    threads = [
        threading.Thread(target=writer, args=(n, container.consents if n < 8 else other.consents))
        for n in range(10)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()

    result = audit(database_url)
    result.assert_consistent()
    assert len(acked) == len(set(acked)) == result.events
    assert set(acked) == result.event_ids
    seqs = {
        e.event_id: e.seq
        for sid in {key[1] for key in sent}
        for e in container.queries.history(sid, limit=1000).events
    }
    for key, made in sent.items():
        assert [seqs[e] for e in made] == sorted(seqs[e] for e in made), key


def _blocked_batch(
    group: GroupCommit,
    first: Callable[[Connection], Any],
    others: list[Callable[[Connection], Any]],
) -> list[Any]:
    """Run ``first`` as a batch of its own that waits until ``others`` are all queued behind
    it, so that they form the next batch together. Results (or errors) in order."""
    go = threading.Event()
    results: list[Any] = [None] * (1 + len(others))

    def held(conn: Connection) -> Any:
        go.wait(30)
        return first(conn)

    def submit(i: int, work: Callable[[Connection], Any]) -> None:
        try:
            results[i] = group.run(work)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=submit, args=(0, held))]
    threads[0].start()
    while not group._busy:
        time.sleep(0.001)
    for i, work in enumerate(others, 1):
        threads.append(threading.Thread(target=submit, args=(i, work)))
        threads[-1].start()
    deadline = time.monotonic() + 30
    while len(group._waiting) < len(others) and time.monotonic() < deadline:
        time.sleep(0.001)
    go.set()
    for t in threads:
        t.join()
    return results


def _device(name: str, fail: bool = False) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        conn.execute(
            insert(devices).values(
                subject_id="s",
                device_id=name,
                platform="ios",
                app_version="1",
                os_permissions="{}",
                updated_at=datetime.now(UTC),
            )
        )
        if fail:
            raise ValueError(f"{name} fails")
        return name

    return work


def test_writes_waiting_behind_a_batch_commit_together_and_one_failure_fails_alone(
    sqlite_url: str,
) -> None:
    c = bootstrap(make_settings(sqlite_url))
    try:
        group = GroupCommit(c.db)
        results = _blocked_batch(
            group,
            _device("a"),
            [_device("b"), _device("c", fail=True), _device("d"), _device("e")],
        )
        assert results[:2] == ["a", "b"] and results[3:] == ["d", "e"]
        assert isinstance(results[2], ValueError)
        assert (group.batches, group.writes) == (2, 5)
        with c.db.read() as conn:
            stored = set(conn.execute(select(devices.c.device_id)).scalars())
        assert stored == {"a", "b", "d", "e"}  # c's insert went with its savepoint
    finally:
        c.close()


def test_two_changes_to_one_subject_in_one_batch_chain_in_arrival_order(
    sqlite_url: str,
) -> None:
    c = bootstrap(make_settings(sqlite_url))
    try:
        group = c.consents.group
        assert group is not None
        seen: list[str] = []

        def change(state: ChoiceState) -> Callable[[Connection], Any]:
            def work(conn: Connection) -> Any:
                seen.append(state.value)
                return c.consents._change_in(
                    conn,
                    "same",
                    [Change("recs", state)],
                    [c.consents.resolve("recs")],
                    Context(source="api"),
                    None,
                    None,
                )

            return work

        results = _blocked_batch(
            group,
            change(ChoiceState.GRANTED),
            [change(ChoiceState.DENIED), change(ChoiceState.GRANTED)],
        )
        assert all(r.changed == ["recs"] for r in results), results
        assert group.batches == 2
        history = [e.state for e in reversed(c.queries.history("same").events)]
        assert history == seen == ["granted", "denied", "granted"]
        audit(sqlite_url).assert_consistent()
    finally:
        c.close()
