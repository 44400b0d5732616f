"""Two `consentry serve` processes on one PostgreSQL and one NATS behave as one system: a write
on either is seen by a JetStream follower and on the other's HTTP change feed. Also measures
write -> follower latency (reported, not asserted: only an anti-hang bound)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from live_server import LiveServer, server_env
from nats_follow import BlockingNatsFollower, StreamChange
from nats_support import NatsNames

WRITES = 40
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def servers(postgres_url: str, nats_names: NatsNames, tmp_path: Path) -> Iterator[list[LiveServer]]:
    env = server_env(postgres_url, CONSENTRY_RELAY="embedded", **nats_names.env())
    started = [LiveServer(env, tmp_path / f"server-{n}.log") for n in "ab"]
    try:
        for server in started:  # one after the other: the first one migrates the schema
            server.start()
        yield started
    finally:
        for server in started:
            server.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_a_write_on_one_server_reaches_followers_of_the_other(
    servers: list[LiveServer],
    nats_names: NatsNames,
    record_property: Callable[[str, object], None],
) -> None:
    a, b = servers
    made = a.cli("keys", "create", "--scope", "subjects:write", "--scope", "decide")
    assert made.returncode == 0, made.stderr
    auth = {"Authorization": f"Bearer {made.stdout.strip()}"}
    latencies: list[float] = []
    seen: list[StreamChange] = []
    with (
        BlockingNatsFollower(
            nats_names.url, stream=nats_names.stream, subject_prefix=nats_names.prefix
        ) as follower,
        httpx.Client(headers=auth, timeout=10) as http,
    ):
        for i in range(WRITES):
            server = servers[i % 2]
            state = "granted" if (i // 2) % 2 == 0 else "denied"
            subject = f"cust-{i % 10}"
            started = time.perf_counter()
            put = http.put(
                f"{server.url}/v1/subjects/{subject}/permissions/recs",
                json={"state": state, "notice_version": "2"},
            )
            assert put.status_code == 200, put.text
            event_id = put.json()["event_id"]
            change = follower.get(timeout=10)  # anti-hang bound
            assert change is not None, f"write {i} on {server.url} never reached the follower"
            latencies.append(time.perf_counter() - started)
            assert change.event_id == event_id and change.payload["subject"] == subject
            seen.append(change)
        assert follower.get(timeout=0.5) is None  # each change once, whichever relay sent it
        # The other server's HTTP feed has the first write, made on server A.
        feed = http.get(f"{b.url}/v1/changes", params={"after": 0, "limit": 10_000})
        assert feed.status_code == 200
        assert seen[0].event_id in feed.text
    ms = [1000 * s for s in latencies]
    summary = {
        "writes": WRITES,
        "p50_ms": round(statistics.median(ms), 1),
        "p90_ms": round(percentile(ms, 0.9), 1),
        "p99_ms": round(percentile(ms, 0.99), 1),
        "max_ms": round(max(ms), 1),
    }
    for key, value in summary.items():
        record_property(f"write_to_follower_{key}", value)
    print(f"write -> NATS follower across two servers: {summary}")
