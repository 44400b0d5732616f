"""Pruning the outbox: published changes older than the cutoff go, oldest first, as a contiguous
prefix; a feed cursor below what was pruned answers 410 instead of skipping changes — on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from consentry.bootstrap import Container
from consentry.cli import app
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.feed.reader import CursorGone, read_changes
from consentry.storage.outbox_prune import prune, pruned_upto
from consentry.storage.tables import outbox
from support import MINI, TEST_SECRET, bearer

NOW = datetime.now(UTC)
LATER = NOW + timedelta(days=1)


def toggles(container: Container, n: int) -> None:
    states = [ChoiceState.GRANTED, ChoiceState.DENIED]
    for i in range(n):
        container.consents.change("s1", [Change("recs", states[i % 2])], Context())


def publish(container: Container, *positions: int) -> None:
    query = update(outbox).values(published_at=NOW)
    if positions:
        query = query.where(outbox.c.position.in_(positions))
    with container.db.write() as conn:
        conn.execute(query)


def positions(container: Container) -> list[int]:
    with container.db.read() as conn:
        return list(conn.execute(select(outbox.c.position).order_by(outbox.c.position)).scalars())


def test_published_changes_go_and_older_cursors_are_gone(container: Container) -> None:
    toggles(container, 5)
    publish(container)
    removed, floor = prune(container.db, LATER, NOW, batch=2)
    assert (removed, floor) == (4, 4)
    assert positions(container) == [5]  # the newest row always stays
    with pytest.raises(CursorGone, match="pruned"):
        read_changes(container.db, "3")
    assert [c.position for c in read_changes(container.db, "4")] == [5]


def test_an_unpublished_change_stops_pruning_before_it(container: Container) -> None:
    toggles(container, 5)
    publish(container, 1, 2, 4, 5)
    removed, floor = prune(container.db, LATER, NOW)
    assert (removed, floor) == (2, 2)
    assert positions(container) == [3, 4, 5]
    assert [c.position for c in read_changes(container.db, "2")] == [3, 4, 5]


def test_recent_changes_are_kept(container: Container) -> None:
    toggles(container, 3)
    publish(container)
    assert prune(container.db, NOW - timedelta(days=7), NOW) == (0, 0)
    assert positions(container) == [1, 2, 3]
    with container.db.read() as conn:
        assert pruned_upto(conn) == 0


def test_the_feed_answers_410_for_a_pruned_cursor(container: Container, client: TestClient) -> None:
    toggles(container, 4)
    publish(container)
    prune(container.db, LATER, NOW)
    key = bearer(container.keys.create(["decide"]))
    gone = client.get("/v1/changes", params={"after": "0"}, headers=key)
    assert gone.status_code == 410 and gone.json()["code"] == "cursor_expired"
    kept = client.get("/v1/changes", params={"after": "3"}, headers=key)
    assert kept.status_code == 200 and len(kept.text.splitlines()) == 1


def test_the_cli_prunes_old_published_changes_and_says_what_it_did(
    container: Container, database_url: str
) -> None:
    toggles(container, 3)
    env = {
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_CATALOGUE": str(MINI),
        "CONSENTRY_JWT_SECRET": TEST_SECRET,
    }
    runner = CliRunner()
    first = runner.invoke(app, ["outbox", "prune", "--older-than-days", "7"], env=env)
    assert first.exit_code == 0 and "nothing to prune" in first.stdout
    with container.db.write() as conn:
        conn.execute(update(outbox).values(published_at=NOW, created_at=NOW - timedelta(days=8)))
    second = runner.invoke(app, ["outbox", "prune", "--older-than-days", "7"], env=env)
    assert second.exit_code == 0, second.output
    assert "2 published change(s) older than 7 day(s) pruned" in second.stdout
    assert "below position 2 now answer 410" in second.stdout
    refused = runner.invoke(app, ["outbox", "prune", "--older-than-days", "0"], env=env)
    assert refused.exit_code == 2
