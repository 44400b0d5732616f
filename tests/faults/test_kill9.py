"""Nothing acknowledged is lost when the server is killed with SIGKILL mid-write.

Writers send consent changes (each a real change, with an ``Idempotency-Key``) while the
server is ``kill -9``'d at random points and restarted. A request in flight at a kill is
retried with the same key until it gets an answer, so every change ends acknowledged exactly
once. Afterwards: every acknowledged event is in the ledger, there is no extra event (a retry
never applied a change twice), every chain verifies, the projection equals the replay of the
ledger, and each permission's final state is the last change sent for it.

``CONSENTRY_FAULT_CHANGES`` (default 2,000) and ``CONSENTRY_FAULT_KILLS`` (default 5) size the
run; ``CONSENTRY_FAULT_CHANGES=10000`` is the full run the README describes.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ledger_audit import audit
from live_server import LiveServer, server_env

CHANGES = int(os.environ.get("CONSENTRY_FAULT_CHANGES", "2000"))
KILLS = int(os.environ.get("CONSENTRY_FAULT_KILLS", "5"))
WRITERS = 4
SUBJECTS_PER_WRITER = 10
PERMISSIONS = ("recs", "ads", "email")
SHOWN = {"recs": "2", "ads": "3", "email": "1"}  # their current notice versions
GIVE_UP = 120.0  # seconds one request may go unanswered across restarts (anti-hang bound)
NO_LIMITS = {"CONSENTRY_RATE_LIMIT_PER_KEY": "0", "CONSENTRY_RATE_LIMIT_PER_SUBJECT": "0"}


@dataclass
class Tally:
    acked: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # event -> change
    last_sent: dict[tuple[str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    retries: int = 0
    # Plain changes (no Idempotency-Key) retried after a kill that had committed before it:
    # the retry finds the state already set and records nothing (its event is in the ledger,
    # unacknowledged).
    committed_unacked: int = 0
    # Changes finished so far, whatever their end (acknowledged, found done by their retry, or
    # refused): the run's progress, where kill points are counted (not every change ends
    # acknowledged, so the acknowledged count may never reach the last ones).
    settled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    srv = LiveServer(server_env(database_url, **NO_LIMITS), tmp_path / "server.log")
    yield srv
    srv.stop()


def _writer(base: str, key: str, writer: int, count: int, tally: Tally, keyed: bool) -> None:
    sent: dict[tuple[str, str], int] = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        for i in range(count):
            sid = f"fault-{writer}-{i % SUBJECTS_PER_WRITER}"
            pid = PERMISSIONS[(i // SUBJECTS_PER_WRITER) % len(PERMISSIONS)]
            n = sent.get((sid, pid), 0)
            sent[(sid, pid)] = n + 1
            state = "granted" if n % 2 == 0 else "denied"
            headers = {"Idempotency-Key": f"w{writer}-{i}"} if keyed else {}
            deadline = time.monotonic() + GIVE_UP
            retried = False
            while True:
                try:
                    answer = c.put(
                        f"/v1/subjects/{sid}/permissions/{pid}",
                        json={"state": state, "notice_version": SHOWN[pid]},
                        headers=headers,
                    )
                    break
                except httpx.TransportError:  # killed mid-request, or not back yet
                    retried = True
                    with tally.lock:
                        tally.retries += 1
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            with tally.lock:
                tally.settled += 1
                tally.last_sent[(sid, pid)] = state
                if answer.status_code != 200:
                    tally.errors.append(f"{answer.status_code} {answer.text[:200]}")
                    continue
                body = answer.json()
                if not keyed and retried and not body["changed"] and body["state"] == state:
                    tally.committed_unacked += 1
                    continue
                if not body["changed"] or body["state"] != state:
                    tally.errors.append(f"not applied as sent: {body}")
                tally.acked[body["event_id"]] = (sid, pid, state)


@pytest.mark.parametrize("keyed", [True, False], ids=["idempotency-key", "plain-group-commit"])
def test_no_acknowledged_change_is_lost_across_kill_9s(
    server: LiveServer, database_url: str, keyed: bool
) -> None:
    """With an Idempotency-Key each change is written on its own path (in a savepoint of a
    shared commit on SQLite); without one, a plain change goes through the group commit."""
    seed = int(os.environ.get("CONSENTRY_FAULT_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    made = server.cli("keys", "create", "--scope", "subjects:write")
    assert made.returncode == 0, made.stderr
    server.start()
    tally = Tally()
    per_writer = CHANGES // WRITERS
    threads = [
        threading.Thread(
            target=_writer, args=(server.url, made.stdout.strip(), w, per_writer, tally, keyed)
        )
        for w in range(WRITERS)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    # Kill at random points of the run, each while writers are busy.
    points = sorted(rng.sample(range(per_writer * WRITERS // 20, per_writer * WRITERS), KILLS))
    kills = 0
    for point in points:
        while tally.settled < point and any(t.is_alive() for t in threads):
            time.sleep(0.002)
        if not any(t.is_alive() for t in threads):
            break
        server.kill()
        kills += 1
        time.sleep(rng.uniform(0, 0.3))
        server.start()
    for t in threads:
        t.join(timeout=GIVE_UP * 2)
        assert not t.is_alive(), "a writer hung"
    elapsed = time.monotonic() - started
    server.stop()

    result = audit(database_url)
    lost = set(tally.acked) - result.event_ids
    print(
        json.dumps(
            {
                "fault": "kill -9",
                "database": database_url.split(":", 1)[0],
                "changes": len(tally.acked),
                "kills": kills,
                "lost": len(lost),
                "retried_requests": tally.retries,
                "committed_before_a_kill_unacknowledged": tally.committed_unacked,
                "seconds": round(elapsed, 1),
                "seed": seed,
            }
        )
    )
    assert kills >= KILLS, f"only {kills} kills happened (seed {seed})"
    assert not tally.errors, tally.errors[:5]
    assert not lost, f"{len(lost)} acknowledged change(s) lost (seed {seed})"
    assert len(tally.acked) + tally.committed_unacked == per_writer * WRITERS
    assert result.events == per_writer * WRITERS, "a retried change was applied twice"
    result.assert_consistent()
    final = {key: state for key, (state, _) in result.replayed.items()}
    assert final == tally.last_sent
