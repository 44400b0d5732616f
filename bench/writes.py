"""Ledger write throughput and acknowledgement latency: consent changes through the service layer.

    python bench/writes.py [--database-url URL]... [--changes N] [--threads T]
                           [--rate R] [--seconds S]

Each change appends a hash-chained event, updates the projection and writes an outbox row;
concurrent changes of the process are written and committed as one batch (group commit,
``storage/change_batches.py``), each acknowledged once its batch committed.

- ``closed_loop``: T threads each send N/T changes, the next once the last was acknowledged
  (as the API's and the page's worker threads do): changes/s, this process's CPU per change,
  on PostgreSQL the CPU of the database backends that served it (from /proc, so only when the
  server runs on this machine), changes per batch, p50/p99 acknowledgement latency;
- ``open_loop``: R changes/s offered for S seconds from the event loop (the PUT fast path),
  whatever the acknowledgements do; latency counts from each change's planned send time;
- ``plain_insert``: as many single-row transactions from as many threads (at most 16), each
  one INSERT into an unindexed table (the database's own floor for a durable write here).

Prints JSON, with the load average at the end of each run (other work on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from _common import emit

from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.storage import postgres

CATALOGUE = Path(__file__).resolve().parents[1] / "catalogues" / "marketplace.yaml"


def backend_cpu(pids: set[int]) -> float:
    """CPU seconds so far of these PostgreSQL backend processes (0 for any not on this host)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": round(1000 * ordered[-1], 2)}


class Meter:
    """CPU of this process and of the PostgreSQL backends that served it, and the batches of
    the group commit, between ``start`` and ``stop``."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.backends: set[int] = set()
        driver_rows = postgres.driver_rows

        def noted(conn: Any, sql: str, params: Any) -> Any:  # which backends served us
            self.backends.add(int(conn.connection.driver_connection.info.backend_pid))
            return driver_rows(conn, sql, params)

        postgres.driver_rows = noted
        self._driver_rows = driver_rows

    def _batches_so_far(self) -> tuple[int, int]:
        """(batches, changes) of the group commit so far ((0, 0) for a tree without one)."""
        batcher = getattr(self.container.db, "batcher", None)
        return (batcher().batches, batcher().changes) if batcher is not None else (0, 0)

    def start(self) -> None:
        self._batches, self._changes = self._batches_so_far()
        self._database = backend_cpu(self.backends)
        self._cpu = time.process_time()
        self._wall = time.perf_counter()

    def stop(self, done: int) -> dict[str, Any]:
        elapsed = time.perf_counter() - self._wall
        cpu = time.process_time() - self._cpu
        batches, changes = self._batches_so_far()
        batches -= self._batches
        result: dict[str, Any] = {
            "changes": done,
            "seconds": round(elapsed, 3),
            "changes_per_second": round(done / elapsed, 1),
            "process_cpu_ms_per_change": round(1000 * cpu / done, 3),
        }
        if self.backends:
            database = backend_cpu(self.backends) - self._database
            result["database_backend_cpu_ms_per_change"] = round(1000 * database / done, 3)
        if batches:
            result["changes_per_batch"] = round((changes - self._changes) / batches, 2)
        result["load_average"] = Path("/proc/loadavg").read_text().split()[:3]
        return result

    def close(self) -> None:
        postgres.driver_rows = self._driver_rows


RUN = uuid.uuid4().hex[:8]  # subjects of this run only: every change moves a choice


def _change(i: int, pids: list[str], subjects: int, tag: str) -> tuple[str, list[Change]]:
    """The i-th change of a writer: subjects in turn, and on each subject permissions in turn,
    granted then denied, so that every change records an event."""
    turn, subject = divmod(i, subjects)
    state = ChoiceState.GRANTED if (turn // len(pids)) % 2 == 0 else ChoiceState.DENIED
    return f"{RUN}-{tag}-{subject}", [Change(pids[turn % len(pids)], state)]


def closed_loop(container: Any, pids: list[str], changes: int, threads: int) -> dict[str, Any]:
    """``threads`` writers, each sending its next change once the last one was acknowledged
    (the API's and the page's worker threads)."""
    per_thread = changes // threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    context = Context(source="api")

    def writer(t: int, count: int, tag: str) -> None:
        mine = latencies[t]
        for i in range(count):
            sid, change = _change(i, pids, 50, f"{tag}-{t}")
            sent = time.perf_counter()
            outcome = container.consents.change(sid, change, context)
            mine.append(time.perf_counter() - sent)
            if not outcome.changed:
                raise RuntimeError(f"a change that moved nothing: {sid} {change}")

    warm = [threading.Thread(target=writer, args=(t, 5, "warm")) for t in range(threads)]
    for w in warm:
        w.start()
    for w in warm:
        w.join()
    for mine in latencies:
        mine.clear()
    meter = Meter(container)
    writer(0, 1, "warm-pid")
    meter.start()
    workers = [
        threading.Thread(target=writer, args=(t, per_thread, "closed")) for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    result = {"threads": threads, **meter.stop(per_thread * threads)}
    meter.close()
    result["acknowledgement"] = _percentiles([x for mine in latencies for x in mine])
    return result


def open_loop(container: Any, pids: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """Changes sent at a fixed rate whatever the acknowledgements do (as many clients would),
    from the event loop (the API's PUT fast path); latency from each change's planned send
    time to its acknowledgement, so a stall counts for every change it delays."""
    count = int(rate * seconds)
    context = Context(source="api")
    latencies: list[float] = []

    async def one(i: int, due: float, tag: str = "open") -> None:
        sid, change = _change(i, pids, 1000, tag)
        outcome = await container.consents.change_on_loop(sid, change[0], context)
        if outcome is None:  # not on the loop in this tree: in a worker thread, as the API does
            outcome = await asyncio.to_thread(container.consents.change, sid, change, context)
        if not outcome.changed:
            raise RuntimeError(f"a change that moved nothing: {sid} {change}")
        latencies.append(time.perf_counter() - due)

    async def send() -> None:
        await asyncio.gather(*(one(i, time.perf_counter(), "warm") for i in range(20)))  # warm up
        latencies.clear()
        start = time.perf_counter()
        tasks = []
        for i in range(count):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, due)))
        await asyncio.gather(*tasks)

    meter = Meter(container)
    container.consents.change("open-pid", [Change(pids[0], ChoiceState.GRANTED)], context)
    meter.start()
    asyncio.run(send())
    result = {"offered_per_second": rate, **meter.stop(count)}
    meter.close()
    result["acknowledgement"] = _percentiles(latencies)
    return result


def run(url: str, changes: int, threads: int, rate: float, seconds: float) -> dict[str, Any]:
    container = bootstrap(Settings(database_url=url, catalogue=CATALOGUE, demo=True))
    gc.collect()  # as the server does once built (consentry.asgi.settle_heap)
    gc.freeze()
    pids = [p.id for p in container.catalogue.permissions if p.toggleable][:8]
    result: dict[str, Any] = {"database": url.split(":", 1)[0]}
    try:
        if changes:
            result["closed_loop"] = closed_loop(container, pids, changes, threads)
        if rate and seconds:
            result["open_loop"] = open_loop(container, pids, rate, seconds)
    finally:
        container.close()
    if changes:
        result["plain_insert"] = plain_insert(url, changes, min(threads, 16))
    return result


def plain_insert(url: str, count: int, threads: int) -> dict[str, float]:
    """The same number of single-row transactions, by as many threads, each one INSERT of an
    event-sized row into an unindexed table (the database's own floor for a durable write)."""
    row = ("0" * 36, "1" * 64, 1, "permission_granted", "marketing.email", "granted", "{}",
           "1", None, "api", "2026-01-01T00:00:00+00:00", "0" * 64, "2" * 64)  # fmt: skip
    columns = "a, b, c, d, e, f, g, h, i, j, k, l, m"
    create = (
        "CREATE TABLE IF NOT EXISTS bench_plain (a varchar(36), b varchar(64), c integer, "
        "d varchar(40), e varchar(100), f varchar(20), g text, h varchar(40), i varchar(10), "
        "j varchar(20), k varchar(40), l varchar(64), m varchar(64))"
    )
    per = count // threads
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]

        def sqlite_writer() -> None:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            for _ in range(per):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    f"INSERT INTO bench_plain ({columns}) VALUES ({','.join('?' * 13)})", row
                )
                conn.execute("COMMIT")
            conn.close()

        setup = sqlite3.connect(path)
        setup.execute(create)
        setup.close()
        target = sqlite_writer
    else:
        plain = url.replace("postgresql+psycopg://", "postgresql://")

        def pg_writer() -> None:
            with psycopg.connect(plain, autocommit=True) as conn:
                for _ in range(per):
                    conn.execute(
                        f"INSERT INTO bench_plain ({columns}) VALUES ({', '.join(['%s'] * 13)})",
                        row,
                    )

        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(create)
        target = pg_writer
    workers = [threading.Thread(target=target) for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    return {"changes_per_second": round(per * threads / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", action="append", default=[])
    parser.add_argument("--changes", type=int, default=6000, help="closed loop (0: none)")
    parser.add_argument("--threads", type=int, default=32, help="closed-loop writers")
    parser.add_argument("--rate", type=float, default=1000.0, help="open loop: changes/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="open loop (0: none)")
    args = parser.parse_args()
    urls = args.database_url
    with tempfile.TemporaryDirectory() as tmp:
        if not urls:
            urls = [f"sqlite:///{tmp}/bench.db"]
        runs = [run(u, args.changes, args.threads, args.rate, args.seconds) for u in urls]
        emit("ledger_writes", {"runs": runs})


if __name__ == "__main__":
    main()
