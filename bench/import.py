"""Bulk import throughput: ``consentry import`` against a plain load of the same rows.

    python bench/import.py [--records N] [--database-url URL ...]

Generates N consent records (JSON Lines, time-ordered, 8 per customer, record ids) for the
demo catalogue, then for each database:

- ``consentry import FILE`` in its own process on an empty database, twice: the default (the
  whole file checked first, then written) and ``--skip-invalid`` (one pass). Each writes
  events, chains, projection and outbox. Reported: records/s from the command's own summary
  (``import_seconds``: reading, checking and writing, not the process start), wall time of the
  process, its CPU time (user + system) per 1,000 records, the same less the CPU time of
  importing a one-record file (``process_start_cpu_seconds``: Python, the catalogue, the
  engines; paid once per import), and its peak RSS (``wait4``);
- on PostgreSQL, ``--skip-invalid --writers 1`` as well: the import's batches written by one
  connection instead of two;
- the plain load: this process reads the same file (``json.loads`` per line) and loads one row
  per record into an unindexed table of the record's shape, in the same batches (``COPY`` on
  PostgreSQL, ``executemany`` in one transaction per batch on SQLite);
- the database's floor (``_import_floor``): the import's own rows, planned beforehand, written
  by the import's own statements on as many connections as it uses; only the writes timed.
  No import of these records into this schema can be faster.

``ratio`` is the plain load's records/s over the import's; ``floor_ratio`` the plain load's
over the floor's (what the schema's rows and indexes cost, before any Python of the import);
``import_share_of_floor`` the one-pass import's records/s over the floor's. On PostgreSQL the
CPU time of the database server is not included in any figure (it runs in its own processes).
A URL of PostgreSQL gets a fresh schema per run (dropped afterwards). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _common import emit
from _targets import Target, plain_pg

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "catalogues" / "marketplace.yaml"
PERMISSIONS = (
    ("marketing.email", "2"),
    ("marketing.sms", "1"),
    ("ads.personalised", "1"),
    ("analytics.product", "1"),
    ("recommendations.personalised", "1"),
    ("sharing.ad_partners", "3"),
    ("search.history", "1"),
    ("tracking.cross_app", "1"),
)
BATCH = 10_000


def generate(path: Path, count: int) -> None:
    start = datetime(2023, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            pid, version = PERMISSIONS[i % len(PERMISSIONS)]
            record = {
                "subject": f"customer-{i // len(PERMISSIONS):09d}",
                "permission": pid,
                "state": "granted" if i % 5 < 3 else "denied",
                "time": (start + timedelta(seconds=i * 3)).isoformat(),
                "notice_version": version,
                "locale": "fr",
                "source": "legacy",
                "record_id": f"rec-{i}",
            }
            out.write(json.dumps(record) + "\n")


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "CONSENTRY_DATABASE_URL": url, "CONSENTRY_CATALOGUE": str(CATALOGUE)}


def upgraded(url: str) -> str:
    """``url``, its database migrated to the newest schema."""
    command = [sys.executable, "-m", "consentry", "db", "upgrade"]
    subprocess.run(command, env=_env(url), check=True, capture_output=True)
    return url


def run_import(
    url: str, path: Path, count: int, extra: list[str], start_cpu: float = 0.0
) -> dict[str, Any]:
    env = _env(upgraded(url))
    command = [sys.executable, "-m", "consentry", "import", str(path), *extra]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        summary = out.read().decode()
    if child.returncode != 0:
        raise RuntimeError(f"consentry import failed ({child.returncode}): {summary}")
    seconds = float(summary.split(" read in ")[1].split(" s")[0])
    written = int(summary.split(" record(s) imported")[0].split()[-1])
    assert written == count, summary
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "records_per_second": round(count / seconds, 1) if seconds else None,
        "import_seconds": seconds,
        "process_wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_1000_records": round(1e6 * cpu / count, 1),
        "cpu_ms_per_1000_records_after_start": round(1e6 * (cpu - start_cpu) / count, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def database_floor(url: str, path: Path) -> dict[str, Any]:
    """The database's floor (``_import_floor``), in a process of its own."""
    script = Path(__file__).with_name("_import_floor.py")
    command = [sys.executable, str(script), url, str(path), str(CATALOGUE)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout))


def start_cost(url: str, tmp: Path) -> float:
    """CPU seconds of ``consentry import`` for a one-record file: the process start (Python,
    the catalogue, the database's engines), which every import pays once."""
    one = tmp / "one.jsonl"
    generate(one, 1)
    return float(run_import(url, one, 1, [])["cpu_seconds"])


_COLUMNS = "subject, permission, state, time, notice_version, locale, source, options, record_id"


def _rows(path: Path) -> Any:
    batch: list[tuple[Any, ...]] = []
    with path.open("rb") as lines:
        for line in lines:
            r = json.loads(line)
            batch.append(
                (
                    r["subject"],
                    r["permission"],
                    r["state"],
                    r["time"],
                    r["notice_version"],
                    r.get("locale"),
                    r.get("source"),
                    json.dumps(r["options"]) if r.get("options") else None,
                    r.get("record_id"),
                )
            )
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def plain_load(url: str, path: Path, count: int) -> dict[str, Any]:
    cpu, started = time.process_time(), time.perf_counter()
    if url.startswith("sqlite"):
        lite = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        lite.execute("PRAGMA journal_mode=WAL")
        lite.execute("PRAGMA synchronous=FULL")
        lite.execute(
            "CREATE TABLE plain (subject TEXT, permission TEXT, state TEXT, time TEXT, "
            "notice_version TEXT, locale TEXT, source TEXT, options TEXT, record_id TEXT)"
        )
        marks = ",".join("?" * 9)
        for batch in _rows(path):
            lite.execute("BEGIN")
            lite.executemany(f"INSERT INTO plain ({_COLUMNS}) VALUES ({marks})", batch)
            lite.execute("COMMIT")
        lite.close()
    else:
        with psycopg.connect(plain_pg(url)) as conn:
            conn.execute(
                "CREATE TABLE plain (subject varchar(200), permission varchar(100), "
                "state varchar(20), time timestamptz, notice_version varchar(40), "
                "locale varchar(10), source varchar(20), options text, record_id varchar(200))"
            )
            conn.commit()
            for batch in _rows(path):
                with (
                    conn.cursor() as cursor,
                    cursor.copy(f"COPY plain ({_COLUMNS}) FROM STDIN") as copy,
                ):
                    for row in batch:
                        copy.write_row(row)
                conn.commit()
    elapsed = time.perf_counter() - started
    return {
        "records_per_second": round(count / elapsed, 1),
        "seconds": round(elapsed, 2),
        "cpu_ms_per_1000_records": round(1e6 * (time.process_time() - cpu) / count, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--database-url", action="append", default=[])
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        path = tmp / "records.jsonl"
        generate(path, args.records)
        for url in args.database_url or ["sqlite:///"]:
            target = Target(url, tmp, "import")
            try:
                start = start_cost(target.fresh(), tmp)
                checked = run_import(target.fresh(), path, args.records, [], start)
                one_pass = run_import(target.fresh(), path, args.records, ["--skip-invalid"], start)
                single = None
                if not url.startswith("sqlite"):
                    one = ["--skip-invalid", "--writers", "1"]
                    single = run_import(target.fresh(), path, args.records, one, start)
                plain = plain_load(target.fresh(), path, args.records)
                floor = database_floor(upgraded(target.fresh()), path)
            finally:
                target.drop()
            runs.append(
                {
                    "database": url.split(":", 1)[0],
                    "records": args.records,
                    "load_average_1min": round(os.getloadavg()[0], 2),
                    "process_start_cpu_seconds": start,
                    "consentry_import": checked,
                    "consentry_import_skip_invalid": one_pass,
                    "consentry_import_skip_invalid_one_writer": single,
                    "plain_load": plain,
                    "database_floor": floor,
                    "import_share_of_floor": round(
                        one_pass["records_per_second"] / floor["records_per_second"], 2
                    ),
                    "floor_ratio": round(
                        plain["records_per_second"] / floor["records_per_second"], 2
                    ),
                    "ratio": round(plain["records_per_second"] / checked["records_per_second"], 2),
                    "ratio_skip_invalid": round(
                        plain["records_per_second"] / one_pass["records_per_second"], 2
                    ),
                }
            )
    emit("bulk_import", {"runs": runs, "bench_peak_rss_mb": _self_rss()})


def _self_rss() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


if __name__ == "__main__":
    main()
