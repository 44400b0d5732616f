"""The change feed never lets a follower step over a change that commits late (PostgreSQL
hands out outbox positions at insert time, but transactions commit in any order)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, insert

from consentry.bootstrap import Container, bootstrap
from consentry.feed import reader
from consentry.replica.wire import parse_cursor
from consentry.storage import replication
from consentry.storage.database import Database
from consentry.storage.tables import outbox
from support import make_settings


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Container]:
    container = bootstrap(make_settings(postgres_url))
    yield container
    container.close()


def add_row(conn: Connection, subject: str) -> int:
    result = conn.execute(
        insert(outbox)
        .values(
            event_id=str(uuid.uuid4()),
            subject_id=subject,
            payload=json.dumps({"subject": subject, "seq": 1, "kind": "test"}),
            created_at=datetime.now(UTC),
        )
        .returning(outbox.c.position)
    )
    return int(result.scalar_one())


def positions(changes: list[reader.FeedEntry]) -> list[int]:
    return [c.position for c in changes]


@pytest.mark.postgres
def test_a_later_position_is_held_back_until_the_earlier_one_commits(pg: Container) -> None:
    slow = pg.db.write_engine.connect()
    slow_tx = slow.begin()
    early = add_row(slow, "slow")  # position taken, not committed
    with pg.db.write() as conn:
        late = add_row(conn, "fast")
    assert late == early + 1
    held = reader.read_changes(pg.db, "0", settle_timeout=0.2)
    assert positions(held) == []  # 'late' is visible, but 'early' might still commit
    slow_tx.commit()
    slow.close()
    assert positions(reader.read_changes(pg.db, "0")) == [early, late]


@pytest.mark.postgres
def test_a_reader_waits_for_the_writer_and_then_sees_both(pg: Container) -> None:
    slow = pg.db.write_engine.connect()
    slow_tx = slow.begin()
    early = add_row(slow, "slow")
    with pg.db.write() as conn:
        late = add_row(conn, "fast")

    def finish() -> None:
        slow_tx.commit()
        slow.close()

    timer = threading.Timer(0.2, finish)
    timer.start()
    try:
        assert positions(reader.read_changes(pg.db, "0", settle_timeout=10)) == [early, late]
    finally:
        timer.join()


@pytest.mark.postgres
def test_the_changes_before_a_hole_are_answered_without_waiting_for_its_writer(
    pg: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pg.db.write() as conn:
        first = add_row(conn, "first")
    slow = pg.db.write_engine.connect()
    slow_tx = slow.begin()
    early = add_row(slow, "slow")  # position taken, not committed
    with pg.db.write() as conn:
        late = add_row(conn, "fast")
    waits: list[float] = []
    settle = replication.settle

    def counted(db: Database, timeout: float) -> bool:
        waits.append(timeout)
        return settle(db, timeout)

    monkeypatch.setattr(replication, "settle", counted)
    try:
        assert positions(reader.read_changes(pg.db, "0", settle_timeout=10)) == [first]
        assert waits == []  # the hole comes after the answer: nothing to wait for
    finally:
        slow_tx.commit()
        slow.close()
    assert positions(reader.read_changes(pg.db, str(first))) == [early, late]


@pytest.mark.postgres
def test_a_rolled_back_position_does_not_block_the_feed(pg: Container) -> None:
    with pg.db.write_engine.connect() as conn:
        tx = conn.begin()
        hole = add_row(conn, "gone")
        tx.rollback()
    with pg.db.write() as conn:
        after = add_row(conn, "kept")
    assert after > hole
    assert positions(reader.read_changes(pg.db, "0")) == [after]


@pytest.mark.postgres
def test_a_snapshot_cursor_waits_for_writers_in_flight(pg: Container) -> None:
    slow = pg.db.write_engine.connect()
    slow_tx = slow.begin()
    add_row(slow, "slow")
    assert reader.settled_head(pg.db, settle_timeout=0.2) is None  # would not be safe yet
    slow_tx.commit()
    slow.close()
    cursor = reader.settled_head(pg.db)
    assert cursor is not None and parse_cursor(cursor)[0] == 1


def test_positions_on_sqlite_are_served_in_order(sqlite_container: Container) -> None:
    with sqlite_container.db.write() as conn:
        first = add_row(conn, "a")
        second = add_row(conn, "b")
    changes = reader.read_changes(sqlite_container.db, "0")
    assert positions(changes) == [first, second]
    assert changes[-1].cursor == f"{second}.{changes[-1].event_id}"
    assert reader.read_changes(sqlite_container.db, changes[-1].cursor) == []
