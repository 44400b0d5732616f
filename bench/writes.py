"""Ledger write throughput: consent changes per second through the service layer.

    python bench/writes.py [--database-url URL] [--changes N] [--threads T]

Each change appends a hash-chained event, updates the projection and writes an outbox row in
one transaction (on SQLite, concurrent changes share one: group commit,
``storage/group_commit.py``). Reported per change: this process's CPU time, the statements
sent to the database (through SQLAlchemy or ``postgres.driver_rows``; transaction control and
connection checks not included), on PostgreSQL the CPU time of the database backends that
served it (from /proc, so only when the server runs on this machine), on SQLite the changes
per group-commit batch; and beside it ``plain_insert``: as many single-row transactions from
as many threads, each one INSERT into an unindexed table (the database's own floor for a
durable write here). Prints JSON.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from _common import emit
from sqlalchemy import event

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


def run(url: str, changes: int, threads: int) -> dict[str, Any]:
    container = bootstrap(Settings(database_url=url, catalogue=CATALOGUE, demo=True))
    pids = [p.id for p in container.catalogue.permissions if p.toggleable][:8]
    per_thread = changes // threads
    engine = container.db.write_engine
    statements = [0]
    backends: set[int] = set()

    @event.listens_for(engine, "before_cursor_execute")
    def _count(conn: Any, *_: Any) -> None:
        statements[0] += 1
        pid: Any = getattr(
            getattr(conn.connection.dbapi_connection, "info", None), "backend_pid", 0
        )
        if pid:
            backends.add(int(pid))

    driver_rows = getattr(postgres, "driver_rows", None)

    def counted(conn: Any, sql: str, params: Any) -> Any:  # the statements sent past SQLAlchemy
        statements[0] += 1
        pid = conn.connection.driver_connection.info.backend_pid
        backends.add(int(pid))
        return driver_rows(conn, sql, params)  # type: ignore[misc]

    if driver_rows is not None:
        postgres.driver_rows = counted

    def writer(t: int, count: int = per_thread) -> None:
        for i in range(count):
            state = ChoiceState.GRANTED if (i // len(pids)) % 2 == 0 else ChoiceState.DENIED
            container.consents.change(
                f"bench-{t}-{i % 50}", [Change(pids[i % len(pids)], state)], Context(source="api")
            )

    # Warm up (connections, compiled and prepared statements) on subjects not measured.
    for t in range(threads, 2 * threads):
        writer(t, 20)
    statements[0] = 0
    database_before = backend_cpu(backends)
    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    cpu_before = time.process_time()
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    database_cpu = backend_cpu(backends) - database_before
    group = container.consents.group
    container.close()
    if driver_rows is not None:
        postgres.driver_rows = driver_rows
    done = per_thread * threads
    result: dict[str, Any] = {
        "database": url.split(":", 1)[0],
        "changes": done,
        "threads": threads,
        "seconds": round(elapsed, 3),
        "changes_per_second": round(done / elapsed, 1),
        "process_cpu_ms_per_change": round(1000 * cpu / done, 3),
        "statements_per_change": round(statements[0] / done, 2),
    }
    if backends:
        result["database_backend_cpu_ms_per_change"] = round(1000 * database_cpu / done, 3)
    if group is not None and group.batches:
        result["group_commit_changes_per_batch"] = round(group.writes / group.batches, 2)
    result["plain_insert"] = plain_insert(url, done, threads)
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
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    urls = args.database_url
    with tempfile.TemporaryDirectory() as tmp:
        if not urls:
            urls = [f"sqlite:///{tmp}/bench.db"]
        emit("ledger_writes", {"runs": [run(u, args.changes, args.threads) for u in urls]})


if __name__ == "__main__":
    main()
