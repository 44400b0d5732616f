"""Periodic checkpoints: one after the ledger changed, none when it did not, and one per window
however many API processes run a scheduler on the same PostgreSQL database."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.services.checkpoint_schedule import (
    CheckpointScheduler,
    scheduler,
    with_checkpoints,
)
from consentry.services.checkpoints import published
from consentry.services.receipt_signing import load_receipt_keys, new_signing_key_pem
from consentry.storage.checkpoints import elected
from consentry.storage.database import Database
from support import make_settings

INTERVAL = 0.4  # seconds: short, so a test sees several windows
DEADLINE = 30.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {DEADLINE} s for {what}")
        time.sleep(0.02)


def idle_windows(*schedulers: CheckpointScheduler, count: int = 3) -> None:
    """Wait until every scheduler woke ``count`` more times."""
    start = [s.ticks for s in schedulers]
    wait_for(
        lambda: all(s.ticks >= n + count for s, n in zip(schedulers, start, strict=True)),
        f"{count} more wake-ups",
    )


@pytest.fixture
def keyed(database_url: str) -> Iterator[Container]:
    container = bootstrap(make_settings(database_url, receipt_signing_key=new_signing_key_pem()))
    yield container
    container.close()


def change(container: Container, subject: str, state: ChoiceState) -> None:
    container.consents.change(subject, [Change("recs", state)], Context())


def test_a_checkpoint_follows_a_change_and_none_an_unchanged_ledger(
    keyed: Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="consentry.checkpoints")
    keys = load_receipt_keys(keyed.settings)
    running = CheckpointScheduler(keyed.db, keys, INTERVAL)
    running.start()
    try:
        idle_windows(running)
        assert published(keyed.db) == []  # an empty ledger is not checkpointed
        change(keyed, "cust-1", ChoiceState.GRANTED)
        wait_for(lambda: len(published(keyed.db)) == 1, "the first checkpoint")
        root = json.loads(published(keyed.db)[0])["checkpoint"]["root"]
        assert f"checkpoint 1 signed: 1 chain(s), root {root[:16]}" in caplog.text
        idle_windows(running)
        assert len(published(keyed.db)) == 1  # nothing changed: no empty duplicate
        change(keyed, "cust-1", ChoiceState.DENIED)
        wait_for(lambda: len(published(keyed.db)) == 2, "the second checkpoint")
        idle_windows(running)
        assert len(published(keyed.db)) == 2
    finally:
        running.stop()


@pytest.mark.postgres
def test_two_schedulers_on_one_postgres_database_make_one_checkpoint_per_change(
    postgres_url: str,
) -> None:
    settings = make_settings(postgres_url, receipt_signing_key=new_signing_key_pem())
    container = bootstrap(settings)
    other = Database(postgres_url)  # another process's engine
    keys = load_receipt_keys(settings)
    both = [
        CheckpointScheduler(container.db, keys, INTERVAL),
        CheckpointScheduler(other, keys, INTERVAL),
    ]
    for running in both:
        running.start()
    try:
        for n, state in enumerate((ChoiceState.GRANTED, ChoiceState.DENIED), start=1):
            change(container, "cust-1", state)
            wait_for(lambda n=n: len(published(container.db)) == n, f"checkpoint {n}")  # type: ignore[misc]
            idle_windows(*both)
            assert len(published(container.db)) == n
    finally:
        for running in both:
            running.stop()
        other.dispose()
        container.close()


def test_serve_runs_the_scheduler_for_the_application_lifetime(database_url: str) -> None:
    settings = make_settings(
        database_url, receipt_signing_key=new_signing_key_pem(), checkpoint_interval=INTERVAL
    )
    container = bootstrap(settings)
    try:
        app = with_checkpoints(create_app(container), settings, container.db)
        with TestClient(app):
            change(container, "cust-1", ChoiceState.GRANTED)
            wait_for(lambda: len(published(container.db)) == 1, "a checkpoint")
        change(container, "cust-1", ChoiceState.DENIED)
        time.sleep(3 * INTERVAL)  # stopped with the application: no checkpoint of this change
        assert len(published(container.db)) == 1
    finally:
        container.close()


def test_no_scheduler_when_turned_off_or_without_a_signing_key(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        key = new_signing_key_pem()
        off = make_settings(sqlite_url, receipt_signing_key=key, checkpoint_interval=0)
        assert scheduler(off, db) is None
        assert scheduler(make_settings(sqlite_url), db) is None  # no receipt key
        on = scheduler(make_settings(sqlite_url, receipt_signing_key=key), db)
        assert on is not None and on.interval == 3600
    finally:
        db.dispose()


@pytest.mark.parametrize("value", ["-1", "-0.5", "nan"])
def test_a_negative_interval_is_refused_with_the_setting_named(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENTRY_CHECKPOINT_INTERVAL", value)
    with pytest.raises(ValidationError, match="CONSENTRY_CHECKPOINT_INTERVAL must be 0"):
        Settings()


@pytest.mark.postgres
def test_one_process_at_a_time_is_elected_on_postgres(postgres_url: str) -> None:
    first, second = Database(postgres_url), Database(postgres_url)
    try:
        with elected(first) as leader, elected(second) as follower:
            assert leader and not follower
        with elected(second) as leader:
            assert leader  # released with the first one's transaction
    finally:
        first.dispose()
        second.dispose()
