"""Export is streamed: a subject with 100,000 events is exported by the real server (JSON and
CSV) while the server's peak resident memory stays under 200 MB — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from consentry import crypto
from consentry.bootstrap import bootstrap
from consentry.domain.events import EventKind, seal
from consentry.storage import repository as repo
from live_server import LiveServer, server_env
from support import make_settings

SID = "cust-export-100k"
EVENTS = 100_000
CHUNK = 5_000
LIMIT_BYTES = 200 * 1024 * 1024
KINDS = {True: EventKind.PERMISSION_GRANTED, False: EventKind.PERMISSION_DENIED}


def write_long_history(database_url: str) -> None:
    """100,000 chained events on one permission, each with sealed options, written in chunks
    through the ledger's own append (the same rows a long life of toggling leaves)."""
    container = bootstrap(make_settings(database_url))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with container.db.write() as conn:
        ref = repo.ensure_subject(conn, SID, start)
    try:
        seq = 0
        while seq < EVENTS:
            with container.db.write() as conn:
                head = repo.head(conn, SID)
                key = repo.subject_key(conn, ref, start)
                assert key is not None
                batch, prev = [], head.hash
                for n in range(seq + 1, min(seq + CHUNK, EVENTS) + 1):
                    event_id = str(uuid.uuid4())
                    granted = n % 2 == 1
                    event = seal(
                        event_id=event_id,
                        subject_ref=ref,
                        seq=n,
                        kind=EventKind.PERMISSION_GRANTED
                        if granted
                        else EventKind.PERMISSION_DENIED,
                        permission_id="recs",
                        state="granted" if granted else "denied",
                        notice_version="2",
                        source="app",
                        occurred_at=start + timedelta(seconds=n),
                        prev_hash=prev,
                        options=crypto.seal_options(key, {"n": n}, event_id.encode()),
                        locale="fr",
                    )
                    batch.append(event)
                    prev = event.hash
                container.db.backend.write(conn, SID, head, batch, start + timedelta(seconds=seq))
                seq = batch[-1].seq
    finally:
        container.close()


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture
def long_history(database_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    write_long_history(database_url)
    container = bootstrap(make_settings(database_url))
    try:
        secret = container.keys.create(["subjects:read"], "export-test")
    finally:
        container.close()
    server = LiveServer(server_env(database_url), tmp_path / "server.log")
    server.start()
    yield server, secret
    server.stop()


def test_a_100k_event_export_streams_within_200_mb(long_history: tuple[LiveServer, str]) -> None:
    server, secret = long_history
    assert server.proc is not None
    print(f"server peak RSS after start: {peak_rss(server.proc.pid) / 2**20:.1f} MiB")
    headers = {"Authorization": f"Bearer {secret}"}
    url = f"{server.url}/v1/subjects/{SID}/export"
    with httpx.stream("GET", url, headers=headers, timeout=300) as response:
        assert response.status_code == 200
        body = b"".join(response.iter_bytes())
    doc = json.loads(body)
    assert len(doc["history"]) == EVENTS
    assert doc["history"][-1]["options"] == {"n": EVENTS}
    with httpx.stream("GET", url, params={"format": "csv"}, headers=headers, timeout=300) as r:
        assert r.status_code == 200
        rows = list(csv.DictReader(io.StringIO(b"".join(r.iter_bytes()).decode())))
    assert len(rows) == EVENTS
    peak = peak_rss(server.proc.pid)
    print(f"server peak RSS after exporting {EVENTS} events twice: {peak / 2**20:.1f} MiB")
    assert peak < LIMIT_BYTES, f"server peak RSS {peak / 2**20:.0f} MB"
