"""The ledger and its projections, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, update

from consentry.bootstrap import Container, bootstrap
from consentry.domain.errors import ConcurrencyConflict, IdempotencyMismatch
from consentry.domain.events import EventKind, seal
from consentry.domain.planning import Change, Context
from consentry.domain.state import Choice, ChoiceState
from consentry.services.idempotency import Idempotency
from consentry.services.ledger import verify
from consentry.storage.tables import events, metadata, outbox, permission_states, subjects
from support import make_settings, ref_of

GRANT = ChoiceState.GRANTED
DENY = ChoiceState.DENIED


def count(container: Container, table: object) -> int:
    with container.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_migrations_create_exactly_the_declared_schema(container: Container) -> None:
    with container.db.write_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_change_writes_event_projection_and_outbox_together(container: Container) -> None:
    outcome = container.consents.change("s1", [Change("recs", GRANT)], Context(source="web"))
    assert outcome.changed == ["recs"]
    assert (
        count(container, events),
        count(container, permission_states),
        count(container, outbox),
    ) == (1, 1, 1)
    entry = outcome.entries[0]
    assert entry.state == "granted" and entry.effective and entry.source == "web"
    with container.db.read() as conn:
        row = conn.execute(select(outbox)).one()
    assert row.event_id == entry.event_id and row.published_at is None


def nothing_written(container: Container) -> bool:
    return (
        count(container, events),
        count(container, permission_states),
        count(container, outbox),
        count(container, subjects),
    ) == (0, 0, 0, 0)


def test_a_change_that_fails_after_its_write_in_a_transaction_leaves_no_trace(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = container.db.backend
    written = backend.write

    def write_then_fail(*args: Any, **kwargs: Any) -> None:
        written(*args, **kwargs)  # events, projection and outbox rows, in the transaction
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(backend, "write", write_then_fail)
    # An idempotency record is written after the change: this change runs in a transaction.
    idem = Idempotency("cred", "k1", "fp")
    with pytest.raises(RuntimeError):
        container.consents.change("s1", [Change("recs", GRANT)], Context(), idempotency=idem)
    assert nothing_written(container)


def refuse_outbox_rows(container: Container) -> None:
    """From now on, inserting an outbox row fails inside the database."""
    with container.db.write() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON outbox "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON outbox "
                "BEGIN SELECT RAISE(FAIL, 'outbox refused'); END"
            )


def test_a_plain_change_whose_write_fails_midway_leaves_no_trace(container: Container) -> None:
    # A plain change commits its one write statement on its own (PostgreSQL): the outbox rows
    # come last in it, and when they fail, the head, the events and the projection are undone.
    refuse_outbox_rows(container)
    with pytest.raises(Exception) as failed:  # SQLite's is retried as a conflict first
        container.consents.change("s1", [Change("recs", GRANT)], Context())
    assert "outbox refused" in f"{failed.value} {failed.value.__cause__}"
    assert nothing_written(container)
    with container.db.write() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER refuse" + (" ON outbox" if conn.dialect.name == "postgresql" else "")
        )
    container.consents.change("s1", [Change("recs", GRANT)], Context())
    assert (count(container, events), count(container, outbox)) == (1, 1)


def test_unchanged_choice_records_no_new_event(container: Container) -> None:
    first = container.consents.change("s1", [Change("recs", GRANT)], Context())
    again = container.consents.change("s1", [Change("recs", GRANT)], Context())
    assert again.changed == [] and again.entries[0].event_id == first.entries[0].event_id
    assert count(container, events) == 1


def test_refuse_all_writes_one_event_per_changed_consent(container: Container) -> None:
    consents = container.consents
    consents.change("s1", [Change("recs", GRANT), Change("ads", GRANT)], Context())
    outcome = consents.change("s1", consents.all_consents(DENY), Context())
    consent_ids = {"recs", "ads", "email", "sale", "location"}
    assert set(outcome.changed) == consent_ids
    assert count(container, events) == 2 + len(consent_ids)
    states = {v.id: v for v in container.queries.permissions("s1")}
    assert states["fraud"].effective  # objecting to legitimate interest is its own act
    assert not any(states[p].effective for p in consent_ids)


def test_history_is_newest_first_and_paginated(container: Container) -> None:
    consents = container.consents
    for i in range(5):
        consents.change("s1", [Change("recs", GRANT if i % 2 == 0 else DENY)], Context())
    queries = container.queries
    first = queries.history("s1", limit=2)
    second = queries.history("s1", limit=2, cursor=first.next_cursor)
    third = queries.history("s1", limit=2, cursor=second.next_cursor)
    seqs = [e.seq for page in (first, second, third) for e in page.events]
    assert seqs == [5, 4, 3, 2, 1]
    assert third.next_cursor is None


def test_two_devices_changing_at_once_lose_no_event(container: Container) -> None:
    per_device = 40
    errors: list[BaseException] = []

    def device(name: str) -> None:
        try:
            for i in range(per_device):
                state = GRANT if i % 2 == 0 else DENY
                container.consents.change(
                    "s1",
                    [Change("recs", state, options={"device": name, "n": i})],
                    Context(source="app", channel=name),
                )
        except BaseException as exc:  # surfaced below: a lost event must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=device, args=(n,)) for n in ("phone", "laptop")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count(container, events) == 2 * per_device
    result = verify(container.db)
    assert result.broken is None and result.events == 2 * per_device
    last = container.queries.history("s1", limit=1).events[0]
    current = {v.id: v for v in container.queries.permissions("s1")}["recs"]
    assert current.event_id == last.event_id and current.state == last.state


def test_idempotency_key_replays_the_first_answer(container: Container) -> None:
    key = Idempotency("key:abc", "k-1", "fingerprint-1")
    first = container.consents.change("s1", [Change("recs", GRANT)], Context(), key)
    container.consents.change("s1", [Change("recs", DENY)], Context())
    replay = container.consents.change("s1", [Change("recs", GRANT)], Context(), key)
    assert replay.replayed and replay.entries == first.entries
    assert count(container, events) == 2
    with pytest.raises(IdempotencyMismatch):
        container.consents.change(
            "s1", [Change("recs", DENY)], Context(), Idempotency("key:abc", "k-1", "other")
        )


def test_state_survives_a_restart(database_url: str) -> None:
    first = bootstrap(make_settings(database_url))
    first.consents.change("s1", [Change("ads", GRANT)], Context(source="web", locale="fr"))
    first.close()
    second = bootstrap(make_settings(database_url))
    try:
        ads = {v.id: v for v in second.queries.permissions("s1")}["ads"]
        assert ads.state == "granted" and ads.effective and ads.source == "web"
        assert second.queries.history("s1").events[0].locale == "fr"
    finally:
        second.close()


@pytest.fixture
def ledger(container: Container) -> Iterator[Container]:
    for i in range(3):
        container.consents.change("s1", [Change("recs", GRANT if i % 2 == 0 else DENY)], Context())
    container.consents.change("s2", [Change("ads", GRANT)], Context())
    yield container


def test_untouched_ledger_verifies(ledger: Container) -> None:
    result = verify(ledger.db)
    assert (result.subjects, result.events, result.broken) == (2, 4, None)


def test_tampered_row_is_found_by_verification(ledger: Container) -> None:
    with ledger.db.write() as conn:
        conn.execute(
            update(events)
            .where(events.c.subject_ref == ref_of(ledger.db, "s1"), events.c.seq == 2)
            .values(state="granted")
        )
    result = verify(ledger.db)
    assert result.broken is not None
    assert (result.broken.subject, result.broken.seq) == ("s1", 2)
    assert verify(ledger.db, "s2").broken is None


def test_deleted_newest_event_is_found_by_verification(ledger: Container) -> None:
    with ledger.db.write() as conn:
        conn.execute(
            events.delete().where(
                events.c.subject_ref == ref_of(ledger.db, "s1"), events.c.seq == 3
            )
        )
    broken = verify(ledger.db, "s1").broken
    assert broken is not None and "removed" in broken.problem


def test_a_change_of_several_permissions_is_announced_in_chain_order(container: Container) -> None:
    outcome = container.consents.change("s1", container.consents.all_consents(GRANT), Context())
    with container.db.read() as conn:
        rows = conn.execute(select(outbox.c.payload).order_by(outbox.c.position)).scalars().all()
    seqs = [json.loads(payload)["seq"] for payload in rows]
    assert seqs == list(range(1, len(outcome.changed) + 1))


def test_a_write_after_the_head_moved_writes_nothing(container: Container) -> None:
    consents = container.consents
    consents.change("s1", [Change("recs", GRANT)], Context())
    with container.db.read() as conn:
        seen = container.db.backend.current(conn, "s1", ["recs"])
    consents.change("s1", [Change("recs", DENY)], Context())  # another writer moves the head
    now = consents.clock()
    late = seal(
        event_id="00000000-0000-4000-8000-000000000001",
        subject_ref=seen.ref,
        seq=seen.head.seq + 1,
        kind=EventKind.PERMISSION_DENIED,
        permission_id="ads",
        state="denied",
        notice_version="3",
        source="api",
        occurred_at=now,
        prev_hash=seen.head.hash,
    )
    choice = Choice("ads", DENY, "3", now, "api", event_id=late.event_id)
    with pytest.raises(ConcurrencyConflict), container.db.write() as conn:
        container.db.backend.write(conn, "s1", seen.head, [late], now, [choice])
    assert (count(container, events), count(container, outbox)) == (2, 2)
    assert "ads" not in {v.id for v in container.queries.permissions("s1") if v.state != "default"}
    assert verify(container.db).broken is None
