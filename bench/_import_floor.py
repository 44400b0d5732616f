"""The database's floor for an import (``bench/import.py``): the import's own rows, planned
beforehand, written by the import's own statements; only the writes and commits timed.

Every record of the file is read, checked and planned first (``storage.bulk.plan``, each
subject new to the ledger), in batches as ``consentry import`` makes them and split among as
many connections as it writes on (by a hash of the subject id: two on PostgreSQL, one on
SQLite). Then each connection writes its batches, one transaction each, with the backend's
bulk statements (``COPY`` on PostgreSQL). What this takes is what the database needs for the
rows alone: no import can be faster, whatever its Python does. The plans are all held in
memory: measure it on files of at most a few hundred thousand records. It runs in a process
of its own (``python bench/_import_floor.py URL FILE CATALOGUE`` prints JSON), so that the
memory of its plans is not counted in the next import's peak RSS (a child started by the
benchmark inherits the benchmark's high-water mark until it execs).
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consentry.catalogue_io import load_catalogue
from consentry.domain.imports import Checker, ImportRecord
from consentry.services.import_lines import lines
from consentry.services.importing import BATCH, WRITERS
from consentry.storage import bulk, pseudonyms
from consentry.storage.bulk_rows import Plan
from consentry.storage.database import Database


def _records(path: Path, catalogue: Path) -> list[ImportRecord]:
    permissions = {p.id: p for p in load_catalogue(catalogue).permissions}
    checker = Checker(permissions, datetime.now(UTC), "file")
    found: list[ImportRecord] = []
    with path.open("rb") as raw:
        for number, fields, _ in lines(io.BufferedReader(raw, 1 << 20), "jsonl", None):
            found.append(checker.check(fields, number))
    return found


def _plans(records: list[ImportRecord], writers: int) -> list[list[Plan]]:
    shares: list[list[Plan]] = [[] for _ in range(writers)]
    for start in range(0, len(records), BATCH):
        parts: list[list[ImportRecord]] = [[] for _ in range(writers)]
        for record in records[start : start + BATCH]:
            parts[hash(record.subject) % writers].append(record)
        for share, part in zip(shares, parts, strict=True):
            if part:
                refs = {sid: pseudonyms.new_ref() for sid in {r.subject for r in part}}
                share.append(bulk.plan(part, refs, {}, {}))
    return shares


def database_floor(url: str, path: Path, catalogue: Path) -> dict[str, Any]:
    """Records per second the database takes the import's planned rows at (an empty ledger,
    migrated beforehand)."""
    db = Database(url)
    writers = WRITERS if db.backend.locks_rows else 1
    records = _records(path, catalogue)
    shares = _plans(records, writers)
    failures: list[BaseException] = []

    def write(plans: list[Plan]) -> None:
        try:
            with db.write_engine.connect() as conn:
                bulk.prepare(conn)
                for rows in plans:
                    with conn.begin():
                        db.backend.bulk.write(conn, rows, datetime.now(UTC))
        except BaseException as exc:  # raised below, in the measuring thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(share,)) for share in shares]
    cpu, started = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - cpu
    db.write_engine.dispose()
    db.read_engine.dispose()
    if failures:
        raise failures[0]
    return {
        "records_per_second": round(len(records) / elapsed, 1),
        "seconds": round(elapsed, 2),
        "writers": writers,
        "client_cpu_ms_per_1000_records": round(1e6 * client_cpu / len(records), 1),
    }


if __name__ == "__main__":
    url, path, catalogue = sys.argv[1:4]
    print(json.dumps(database_floor(url, Path(path), Path(catalogue))))
