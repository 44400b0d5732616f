"""`consentry relay`: --once to NATS, progress and a clean stop on SIGTERM, one per SQLite file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from consentry.bootstrap import bootstrap
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.events.relay import single_relay_lock
from consentry.storage.database import Database
from consentry.storage.tables import outbox
from nats_support import NatsNames, read_stream
from support import MINI, TEST_SECRET, make_settings

CLI = [sys.executable, "-m", "consentry", "relay"]


def env_for(url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CONSENTRY_DATABASE_URL": url,
        "CONSENTRY_CATALOGUE": str(MINI),
        "CONSENTRY_JWT_SECRET": TEST_SECRET,
    }
    env.pop("CONSENTRY_NATS_URL", None)
    return {**env, **extra}


def unpublished(url: str) -> int:
    db = Database(url)
    try:
        with db.read() as conn:
            query = select(func.count()).where(outbox.c.published_at.is_(None))
            return int(conn.execute(query).scalar_one())
    finally:
        db.dispose()


def write(url: str, subjects: int) -> None:
    container = bootstrap(make_settings(url))
    try:
        for i in range(subjects):
            change = [Change("recs", ChoiceState.GRANTED), Change("ads", ChoiceState.GRANTED)]
            container.consents.change(f"cust-{i}", change, Context())
    finally:
        container.close()


def test_relay_once_publishes_what_is_pending_to_nats_and_exits(
    sqlite_url: str, nats_names: NatsNames
) -> None:
    write(sqlite_url, 5)
    env = env_for(
        sqlite_url,
        CONSENTRY_NATS_STREAM=nats_names.stream,
        CONSENTRY_NATS_SUBJECT_PREFIX=nats_names.prefix,
    )
    done = subprocess.run(
        [*CLI, "--once", "--nats", nats_names.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"stream {nats_names.stream}" in done.stderr
    assert "10 rows published" in done.stderr
    assert len(read_stream(nats_names, 10)) == 10
    again = subprocess.run(
        [*CLI, "--once", "--nats", nats_names.url], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and "0 rows published" in again.stderr


def test_relay_reports_progress_and_stops_cleanly_on_sigterm(sqlite_url: str) -> None:
    relay = subprocess.Popen(
        CLI, env=env_for(sqlite_url), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        assert relay.stderr is not None
        assert "publishing to the HTTP change feed" in relay.stderr.readline()
        write(sqlite_url, 20)
        deadline = time.monotonic() + 10  # anti-hang bound
        while unpublished(sqlite_url) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.1)  # progress is reported once a second
        relay.send_signal(signal.SIGTERM)
        _, err = relay.communicate(timeout=20)
    finally:
        if relay.poll() is None:
            relay.kill()
    assert relay.returncode == 0, err
    assert "rows/s" in err
    assert "relay: stopped (40 rows published)" in err


def test_a_second_relay_on_one_sqlite_file_is_refused(sqlite_url: str) -> None:
    write(sqlite_url, 1)
    db = Database(sqlite_url)
    held = single_relay_lock(db)
    try:
        done = subprocess.run(
            [*CLI, "--once"], env=env_for(sqlite_url), capture_output=True, text=True, timeout=60
        )
    finally:
        assert held is not None
        held.close()
        db.dispose()
    assert done.returncode == 1
    assert "another relay runs on" in done.stderr
