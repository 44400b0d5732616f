"""Ledger write throughput: consent changes per second through the service layer.

    python bench/writes.py [--database-url URL] [--changes N] [--threads T]

Each change appends a hash-chained event, updates the projection and writes an outbox row in
one transaction. Besides changes per second it reports, per change: this process's CPU time,
the statements sent to the database (through SQLAlchemy or ``database.driver_rows``;
transaction control and connection checks not included) and, on PostgreSQL, the CPU time of
the database backends that served it (read from /proc, so only when the server runs on this
machine). Prints JSON.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import emit
from sqlalchemy import event

from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.domain.state import ChoiceState
from consentry.services.consents import Change, Context
from consentry.storage import database

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


def run(url: str, changes: int, threads: int) -> dict[str, float | int | str]:
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

    driver_rows = getattr(database, "driver_rows", None)

    def counted(conn: Any, sql: str, params: Any) -> Any:  # the statements sent past SQLAlchemy
        statements[0] += 1
        pid = conn.connection.driver_connection.info.backend_pid
        backends.add(int(pid))
        return driver_rows(conn, sql, params)  # type: ignore[misc]

    if driver_rows is not None:
        database.driver_rows = counted

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
    container.close()
    if driver_rows is not None:
        database.driver_rows = driver_rows
    done = per_thread * threads
    result: dict[str, float | int | str] = {
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
    return result


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
