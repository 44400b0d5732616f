"""Ledger write throughput and acknowledgement latency: consent changes through the service layer.

    python bench/writes.py [--database-url URL]... [--changes N] [--threads T] [--clients C]
                           [--processes P] [--rate R] [--seconds S]

Each change appends a hash-chained event, updates the projection and writes an outbox row;
concurrent changes of the process are written and committed as one batch (group commit,
``storage/change_batches.py``), each acknowledged once its batch committed. The loops are in
``bench/_write_loops.py``:

- ``closed_loop``: T threads each send N/T changes, the next once the last was acknowledged
  (as the page's and the API's worker threads do): changes/s, this process's CPU per change,
  on PostgreSQL the CPU of the database backends that served it (from /proc, so only when the
  server runs on this machine), changes per batch, p50/p99 acknowledgement latency;
- ``event_loop_closed``: C clients on the event loop, each sending N/C changes, the next once
  the last was acknowledged (concurrent HTTP clients of the API's PUT fast path);
- ``closed_loop_processes``: ``event_loop_closed`` in P processes at once (as ``consentry serve
  --workers P``), C clients and N/P changes each;
- ``open_loop``: R changes/s offered for S seconds from the event loop (the PUT fast path),
  whatever the acknowledgements do; latency counts from each change's planned send time;
- ``plain_insert``: as many single-row transactions from 16 threads, each
  one INSERT into an unindexed table (the database's own floor for a durable write here).

A PostgreSQL URL gets a schema of its own per run (dropped afterwards), so that a run does not
write into the rows of the day's earlier runs; a SQLite URL is the file given (a ledger grown
over runs, on purpose). Prints JSON, with the load average at the end of each run (other work
on the machine).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from _common import emit
from _targets import Target, plain_pg
from _write_loops import (
    closed_loop,
    closed_loop_processes,
    event_loop_closed,
    open_container,
    open_loop,
)


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    container, pids = open_container(url)
    result: dict[str, Any] = {"database": url.split(":", 1)[0]}
    try:
        if args.changes and args.threads:
            result["closed_loop"] = closed_loop(container, pids, args.changes, args.threads)
        if args.changes and args.clients:
            result["event_loop_closed"] = event_loop_closed(
                container, pids, args.changes, args.clients
            )
        if args.rate and args.seconds:
            result["open_loop"] = open_loop(container, pids, args.rate, args.seconds)
    finally:
        container.close()
    if args.changes and args.clients and args.processes > 1:
        result["closed_loop_processes"] = closed_loop_processes(
            url, args.changes, args.clients, args.processes
        )
    if args.changes:
        result["plain_insert"] = plain_insert(url, args.changes, 16)
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
        plain = plain_pg(url)

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
    parser.add_argument("--changes", type=int, default=6000, help="per closed loop (0: none)")
    parser.add_argument("--threads", type=int, default=32, help="closed loop: threads (0: none)")
    parser.add_argument(
        "--clients", type=int, default=64, help="event-loop closed loop: clients (0: none)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="the event-loop closed loop in P processes (1: not)",
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="open loop: changes/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="open loop (0: none)")
    args = parser.parse_args()
    urls = args.database_url
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        if not urls:
            urls = [f"sqlite:///{tmp}/bench.db"]
        for url in urls:
            if url.startswith("sqlite"):  # the file given: runs may grow one ledger
                runs.append(run(url, args))
                continue
            target = Target(url, Path(tmp), "writes")
            try:
                runs.append({**run(target.fresh(), args), "database": "postgresql"})
            finally:
                target.drop()
        emit("ledger_writes", {"runs": runs})


if __name__ == "__main__":
    main()
