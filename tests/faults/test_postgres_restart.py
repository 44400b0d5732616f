"""PostgreSQL restarts under a running server: requests in the gap answer 503 (never 500), the
same server process carries on by itself afterwards, and nothing acknowledged is lost.

This restarts the machine's PostgreSQL cluster, which every other PostgreSQL user of the
machine notices (other developers' test runs included): it runs in CI (``CI`` set) or when
``CONSENTRY_ALLOW_PG_RESTART=1``, is marked slow and serial (``scripts/test.sh`` runs it alone,
after the parallel pass), and the cluster is up again when it ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger_audit import audit
from live_server import LiveServer, server_env

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.serial]

CHANGES = 600
WRITERS = 2
NO_LIMITS = {"CONSENTRY_RATE_LIMIT_PER_KEY": "0", "CONSENTRY_RATE_LIMIT_PER_SUBJECT": "0"}


def _cluster(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _ready() -> bool:
    probe = ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]
    return subprocess.run(probe, check=False, timeout=30).returncode == 0


def _wait_ready(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not _ready():
        assert time.monotonic() < deadline, "PostgreSQL did not come back"
        time.sleep(0.2)


@pytest.fixture
def server(postgres_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    if not (os.environ.get("CI") or os.environ.get("CONSENTRY_ALLOW_PG_RESTART") == "1"):
        pytest.skip(
            "restarts the shared PostgreSQL: runs in CI or with CONSENTRY_ALLOW_PG_RESTART=1"
        )
    if not Path("/etc/postgresql").is_dir():
        pytest.skip("no local PostgreSQL cluster to restart")
    srv = LiveServer(server_env(postgres_url, **NO_LIMITS), tmp_path / "server.log")
    try:
        yield srv
    finally:
        srv.stop()
        if not _ready():
            _cluster("start")
        _wait_ready()


def test_the_server_rides_out_a_postgres_restart_by_itself(
    server: LiveServer, postgres_url: str
) -> None:
    made = server.cli("keys", "create", "--scope", "subjects:write")
    assert made.returncode == 0, made.stderr
    server.start()
    assert server.proc is not None
    pid = server.proc.pid
    acked: dict[str, str] = {}
    unavailable: list[int] = []
    other: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        auth = {"Authorization": f"Bearer {made.stdout.strip()}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            for i in range(CHANGES // WRITERS):
                sid, state = f"restart-{w}-{i % 5}", ("granted", "denied")[(i // 5) % 2]
                deadline = time.monotonic() + 120
                while True:
                    try:
                        answer = client.put(
                            f"/v1/subjects/{sid}/permissions/ads",
                            json={"state": state, "notice_version": "3"},
                            headers={"Idempotency-Key": f"r{w}-{i}"},
                        )
                    except httpx.TransportError as exc:
                        answer = None
                        with lock:
                            other.append(f"transport: {exc!r}")
                    if answer is not None and answer.status_code == 200:
                        with lock:
                            acked[answer.json()["event_id"]] = sid
                        break
                    if answer is not None:
                        with lock:
                            if answer.status_code == 503:
                                unavailable.append(i)
                            else:
                                other.append(f"{answer.status_code} {answer.text[:200]}")
                    assert time.monotonic() < deadline, "no answer for two minutes"
                    time.sleep(0.1)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    while len(acked) < CHANGES // 4:
        time.sleep(0.01)
    _cluster("restart")
    _wait_ready()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive(), "a writer hung"
    assert server.proc.poll() is None and server.proc.pid == pid, "the server had to restart"
    server.stop()

    result = audit(postgres_url)
    lost = set(acked) - result.event_ids
    print(
        json.dumps(
            {
                "fault": "postgres restart",
                "changes": len(acked),
                "answered_503": len(unavailable),
                "lost": len(lost),
            }
        )
    )
    assert not other, other[:5]
    assert not lost
    assert len(acked) == CHANGES and result.events == CHANGES
    result.assert_consistent()
    assert " 500 " not in server.log.read_text()
