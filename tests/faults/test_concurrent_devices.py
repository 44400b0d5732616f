"""Two devices toggle the same permission of the same customer at once, a thousand times each,
against the real server: every change is recorded, the chain stays intact, and the state is
the last committed event's."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger_audit import audit
from live_server import LiveServer, server_env

TOGGLES = int(os.environ.get("CONSENTRY_CONCURRENT_TOGGLES", "1000"))
SID, PID = "two-devices-1", "ads"
NO_LIMITS = {"CONSENTRY_RATE_LIMIT_PER_KEY": "0", "CONSENTRY_RATE_LIMIT_PER_SUBJECT": "0"}


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    srv = LiveServer(server_env(database_url, **NO_LIMITS), tmp_path / "server.log")
    yield srv
    srv.stop()


def test_two_devices_toggling_one_permission_lose_nothing(
    server: LiveServer, database_url: str
) -> None:
    server.start()
    token = server.cli("token", SID).stdout.strip()
    acked: dict[str, list[str]] = {"phone": [], "laptop": []}
    failures: list[str] = []
    gate = threading.Barrier(2)

    def device(name: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            gate.wait()
            for i in range(TOGGLES):
                body: dict[str, object] = {
                    "state": "granted" if i % 2 == 0 else "denied",
                    "options": {"device": name, "n": i},  # never equal: always a change
                }
                if i % 2 == 0:
                    body["notice_version"] = "3"  # the notice the device showed
                answer = client.put(f"/v1/subjects/{SID}/permissions/{PID}", json=body)
                if answer.status_code != 200 or not answer.json()["changed"]:
                    failures.append(f"{name} #{i}: {answer.status_code} {answer.text[:200]}")
                    continue
                acked[name].append(answer.json()["event_id"])

    threads = [threading.Thread(target=device, args=(n,)) for n in acked]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
        assert not t.is_alive(), "a device hung"
    assert not failures, failures[:5]

    with httpx.Client(base_url=server.url, timeout=30) as client:
        current = client.get(
            f"/v1/subjects/{SID}/permissions", headers={"Authorization": f"Bearer {token}"}
        ).json()
        history = client.get(
            f"/v1/subjects/{SID}/history?limit=1", headers={"Authorization": f"Bearer {token}"}
        ).json()
    server.stop()

    result = audit(database_url)
    every = set(acked["phone"]) | set(acked["laptop"])
    assert len(every) == 2 * TOGGLES, "two answers named the same event"
    assert every == result.event_ids, "an acknowledged change is missing, or one is extra"
    result.assert_consistent()
    last = history["events"][0]
    assert last["seq"] == 2 * TOGGLES
    shown = next(p for p in current["permissions"] if p["id"] == PID)
    assert (shown["state"], shown["options"]) == (last["state"], last["options"])
    assert result.replayed[(SID, PID)] == (last["state"], last["event_id"])
