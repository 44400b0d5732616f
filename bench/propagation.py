"""Propagation: write -> NATS follower latency, relay throughput, webhook latency, row sizes.

    python bench/propagation.py [--database-url URL] [--nats URL] [--rows N] [--writes W]

- relay throughput: N outbox rows already waiting (inserted in bulk), drained by one relay (and
  by two at once on PostgreSQL), to NATS JetStream and to the HTTP feed (marking only);
- write -> follower latency: W consent changes through the service layer while a relay runs and
  a JetStream follower listens; "same process" (the relay is woken by the commit, as in
  `consentry serve`) and "other process" (the relay finds the row by polling, every 50 ms, as
  a separate `consentry relay` does); writes come at random moments 0-50 ms apart;
- webhook latency: withdrawal committed -> signed webhook received by a loopback receiver;
- on PostgreSQL, bytes per row of the ledger, projection and outbox tables (for docs/scaling.md).

Uses a fresh SQLite file by default; with a PostgreSQL URL, a fresh schema that is dropped
afterwards. The NATS stream is unique to the run and deleted afterwards. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nats
import psycopg
import yaml
from _common import emit
from _follow import BlockingNatsFollower
from sqlalchemy import insert, text

from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.events.publisher import FeedPublisher, NatsPublisher, Publisher
from consentry.events.relay import Relay
from consentry.events.webhooks import WebhookDispatcher
from consentry.feed.server import ObservedDatabase
from consentry.storage.tables import outbox

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "tests" / "fixtures" / "mini.yaml"
SECRET_ENV = "CONSENTRY_BENCH_WEBHOOK_SECRET"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


def dist_ms(seconds: list[float]) -> dict[str, float]:
    ms = [1000 * s for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p90_ms": pct(ms, 0.9),
        "p99_ms": pct(ms, 0.99),
        "max_ms": round(max(ms), 2),
    }


@contextmanager
def database(url: str | None) -> Iterator[str]:
    if url is None or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            yield url or f"sqlite:///{tmp}/bench.db"
        return
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def delete_stream(url: str, stream: str) -> None:
    async def run() -> None:
        nc = await nats.connect(url, allow_reconnect=False)
        try:
            await nc.jetstream().delete_stream(stream)
        except Exception:
            pass
        await nc.close()

    asyncio.run(run())


def nats_publisher(url: str, names: dict[str, str]) -> NatsPublisher:
    return NatsPublisher(url, stream=names["stream"], subject_prefix=names["subject_prefix"])


def fill_outbox(container: Container, rows: int) -> None:
    now = datetime.now(UTC)
    batch = []
    for i in range(rows):
        subject = f"bulk-{i % 10_000}"
        payload = {
            "event_id": str(uuid.uuid4()),
            "subject": subject,
            "seq": i // 10_000 + 1,
            "kind": "permission_denied",
            "permission": "ads",
            "state": "denied",
            "notice_version": "3",
            "source": "api",
            "occurred_at": now.isoformat(),
            "expires_at": None,
        }
        batch.append(
            {
                "event_id": payload["event_id"],
                "subject_id": subject,
                "payload": json.dumps(payload, sort_keys=True, separators=(",", ":")),
                "created_at": now,
                "published_at": None,
            }
        )
        if len(batch) == 5000 or i == rows - 1:
            with container.db.write() as conn:
                conn.execute(insert(outbox), batch)
            batch = []


def throughput(
    container: Container, rows: int, make: Callable[[], Publisher], relays: int
) -> dict[str, Any]:
    fill_outbox(container, rows)
    workers = [Relay(container.db, make()) for _ in range(relays)]
    started = time.perf_counter()
    threads = [threading.Thread(target=w.drain) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while (extra := workers[0].drain()) > 0:  # rows held back by the other relay at the end
        pass
    elapsed = time.perf_counter() - started
    for w in workers:
        w.close()
    published = sum(w.stats.published for w in workers) + extra
    return {"relays": relays, "rows": published, "rows_per_s": round(published / elapsed)}


def latency(
    container: Container, names: dict[str, str], nats_url: str, writes: int, local: bool
) -> dict[str, float]:
    relay = Relay(container.db, nats_publisher(nats_url, names))
    db = container.db
    assert isinstance(db, ObservedDatabase)
    if local:
        db.committed.append(relay.notify)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    samples: list[float] = []
    rng = random.Random(1)
    follower = BlockingNatsFollower(
        nats_url, stream=names["stream"], subject_prefix=names["subject_prefix"]
    ).start()
    try:
        for i in range(writes):
            # Writes arrive at random moments, not right after the relay's last round (which
            # would phase-lock them to its polling).
            time.sleep(rng.uniform(0, 0.05))
            state = ChoiceState.GRANTED if (i // 50) % 2 == 0 else ChoiceState.DENIED
            started = time.perf_counter()
            outcome = container.consents.change(
                f"lat-{local}-{i % 50}", [Change("recs", state)], Context()
            )
            assert outcome.changed
            change = follower.get(timeout=10)
            if change is None:
                raise RuntimeError("a change never reached the follower")
            samples.append(time.perf_counter() - started)
    finally:
        follower.close()
        relay.stop()
        thread.join(timeout=10)
        relay.close()
        if local:
            db.committed.remove(relay.notify)
    return dist_ms(samples)


class _Receiver(BaseHTTPRequestHandler):
    arrivals: dict[str, float] = {}

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Receiver.arrivals[json.loads(body)["subject"]] = time.perf_counter()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def webhook_latency(url: str, tmp: Path, withdrawals: int) -> dict[str, float]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    data = yaml.safe_load(MINI.read_text(encoding="utf-8"))
    hook_url = f"http://127.0.0.1:{server.server_address[1]}/adnet"
    data["recipients"]["adnet"]["webhook"] = {"url": hook_url, "secret_env": SECRET_ENV}
    catalogue = tmp / "hooks.yaml"
    catalogue.write_text(yaml.safe_dump(data), encoding="utf-8")
    os.environ[SECRET_ENV] = "bench-secret-" + "x" * 32
    container = bootstrap(Settings(database_url=url, catalogue=catalogue, demo=True))
    hooks = WebhookDispatcher(container.db, container.catalogue)
    relay = Relay(container.db, FeedPublisher(), webhooks=hooks)
    assert isinstance(container.db, ObservedDatabase)
    container.db.committed.append(relay.notify)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    samples: list[float] = []
    try:
        for i in range(withdrawals):
            sid = f"hook-{i}"
            container.consents.change(sid, [Change("ads", ChoiceState.GRANTED)], Context())
            started = time.perf_counter()
            container.consents.change(sid, [Change("ads", ChoiceState.DENIED)], Context())
            deadline = started + 10
            while sid not in _Receiver.arrivals and time.perf_counter() < deadline:
                time.sleep(0.0005)
            if sid not in _Receiver.arrivals:
                raise RuntimeError("a webhook never arrived")
            samples.append(_Receiver.arrivals[sid] - started)
    finally:
        relay.stop()
        thread.join(timeout=10)
        relay.close()
        container.close()
        server.shutdown()
        server.server_close()
    return dist_ms(samples)


def row_sizes(container: Container, subjects: int) -> dict[str, float] | None:
    """Bytes per row (heap + indexes) of the tables a change writes, on PostgreSQL."""
    if container.db.dialect != "postgresql":
        return None
    perms = ["recs", "ads", "email", "sale", "location"]
    for i in range(subjects):
        changes = [Change(p, ChoiceState.GRANTED) for p in perms]
        container.consents.change(f"size-{i}", changes, Context(source="web", locale="fr"))
    out: dict[str, float] = {}
    with container.db.read() as conn:
        conn.execute(text("ANALYZE"))
        for table in ("events", "permission_states", "outbox", "subjects"):
            size = conn.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar_one()
            count = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            out[f"{table}_bytes_per_row"] = round(int(size) / max(1, int(count)), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--withdrawals", type=int, default=100)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    names = {"stream": f"BENCH_{run.upper()}", "subject_prefix": f"bench.{run}.changes"}
    results: dict[str, Any] = {"rows": args.rows, "writes": args.writes}
    try:
        with database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
            container = bootstrap(Settings(database_url=url, catalogue=MINI, demo=True))
            results["database"] = container.db.dialect

            def to_nats() -> Publisher:
                return nats_publisher(args.nats, names)

            results["relay_to_nats"] = throughput(container, args.rows, to_nats, 1)
            if container.db.dialect == "postgresql":
                results["two_relays_to_nats"] = throughput(container, args.rows, to_nats, 2)
            results["relay_to_http_feed"] = throughput(container, args.rows, FeedPublisher, 1)
            results["write_to_follower_same_process"] = latency(
                container, names, args.nats, args.writes, local=True
            )
            results["write_to_follower_other_process"] = latency(
                container, names, args.nats, args.writes, local=False
            )
            results["row_sizes"] = row_sizes(container, 2000)
            container.close()
            results["withdrawal_to_webhook"] = webhook_latency(url, Path(tmp), args.withdrawals)
    finally:
        delete_stream(args.nats, names["stream"])
    emit("propagation", results)


if __name__ == "__main__":
    main()
