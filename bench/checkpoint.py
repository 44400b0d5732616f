"""Signed checkpoints at scale: the time to checkpoint N chain heads, and to verify a ledger of
M events against a checkpoint (every chain, the projection, the checkpoint's heads).

    .venv/bin/python bench/checkpoint.py                                   # 1M heads, 1M events
    .venv/bin/python bench/checkpoint.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Prints JSON with the figures and the load average around each phase (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import emit
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, text

from consentry.domain.events import GENESIS, EventKind, seal
from consentry.domain.messages import dumps
from consentry.services import checkpoints
from consentry.services.ledger import verify
from consentry.services.receipt_signing import ReceiptKeys
from consentry.storage.database import Database
from consentry.storage.migrate import upgrade
from consentry.storage.rows import event_row
from consentry.storage.tables import events, permission_states, subjects

CHUNK = 20_000
PERMISSIONS = ("recs", "ads", "email", "sale", "location")


def _fresh(url: str | None, name: str) -> tuple[Database, str]:
    if url is None:
        path = os.path.join(tempfile.mkdtemp(prefix="consentry-bench-"), f"{name}.db")
        url = f"sqlite:///{path}"
    db = Database(url)
    if db.dialect == "postgresql":
        schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        with db.write_engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        db.dispose()
        sep = "&" if "?" in url else "?"
        url = f"{url}{sep}options=-csearch_path%3D{schema}"
        db = Database(url)
    upgrade(db)
    return db, url


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _keys() -> ReceiptKeys:
    signer = Ed25519PrivateKey.generate()
    return ReceiptKeys(signer, (signer.public_key(),))


def bench_checkpoint(url: str | None, heads: int) -> dict[str, Any]:
    db, _ = _fresh(url, "heads")
    now = datetime.now(UTC)
    rows = (
        {
            "subject_ref": secrets.token_hex(32),
            "subject_id": f"bench-{i:08d}",
            "jurisdiction": None,
            "head_seq": 1 + i % 7,
            "head_hash": secrets.token_hex(32),
            "created_at": now,
            "updated_at": now,
        }
        for i in range(heads)
    )
    for batch in _chunks(rows):
        with db.write() as conn:
            conn.execute(insert(subjects), batch)
    keys = _keys()
    load_before = _load()
    started, cpu = time.perf_counter(), time.process_time()
    made = checkpoints.create(db, keys)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    db.dispose()
    return {
        "chain_heads": made.tree_size,
        "seconds": round(seconds, 2),
        "process_cpu_seconds": round(cpu_seconds, 2),
        "target_seconds": 10,
        "load_average_before": load_before,
        "load_average_after": _load(),
    }


def _ledger(db: Database, total: int, per_subject: int) -> int:
    """``total`` events in chains of ``per_subject``, with heads and projection rows."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    subjects_count = total // per_subject
    ev_batch: list[dict[str, Any]] = []
    heads: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []

    def flush() -> None:
        with db.write() as conn:
            if heads:
                conn.execute(insert(subjects), heads)
            if ev_batch:
                conn.execute(insert(events), ev_batch)
            if states:
                conn.execute(insert(permission_states), states)
        ev_batch.clear()
        heads.clear()
        states.clear()

    for s in range(subjects_count):
        ref, prev = secrets.token_hex(32), GENESIS
        last: dict[str, Any] = {}
        for n in range(1, per_subject + 1):
            granted = (s + n) % 3 != 0
            event = seal(
                event_id=str(uuid.uuid4()),
                subject_ref=ref,
                seq=n,
                kind=EventKind.PERMISSION_GRANTED if granted else EventKind.PERMISSION_DENIED,
                permission_id=PERMISSIONS[n % len(PERMISSIONS)],
                state="granted" if granted else "denied",
                notice_version="2",
                source="app",
                occurred_at=start + timedelta(seconds=s * per_subject + n),
                prev_hash=prev,
            )
            prev = event.hash
            ev_batch.append(event_row(event))
            last[event.permission_id] = event
        heads.append(
            {
                "subject_ref": ref,
                "subject_id": f"bench-{s:08d}",
                "jurisdiction": None,
                "head_seq": per_subject,
                "head_hash": prev,
                "created_at": start,
                "updated_at": start,
            }
        )
        for e in last.values():
            states.append(
                {
                    "subject_id": f"bench-{s:08d}",
                    "permission_id": e.permission_id,
                    "state": e.state,
                    "options": dumps({}),
                    "notice_version": e.notice_version,
                    "source": e.source,
                    "updated_at": e.occurred_at,
                    "expires_at": None,
                    "event_id": e.event_id,
                }
            )
        if len(ev_batch) >= CHUNK:
            flush()
    flush()
    return subjects_count * per_subject


def bench_verify(url: str | None, total: int, per_subject: int) -> dict[str, Any]:
    db, _ = _fresh(url, "ledger")
    built = time.perf_counter()
    written = _ledger(db, total, per_subject)
    build_seconds = time.perf_counter() - built
    keys = _keys()
    checkpoints.create(db, keys)
    if db.dialect == "postgresql":
        with db.write_engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    load_before = _load()
    started, cpu = time.perf_counter(), time.process_time()
    result = verify(db, keys=keys.verifying_keys())
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    db.dispose()
    assert result.broken is None, result.broken
    assert result.events == written and result.checkpoint == 1
    return {
        "events": result.events,
        "subjects": result.subjects,
        "seconds": round(seconds, 2),
        "process_cpu_seconds": round(cpu_seconds, 2),
        "events_per_second": round(result.events / seconds),
        "target_seconds": 60,
        "ledger_build_seconds": round(build_seconds, 1),
        "load_average_before": load_before,
        "load_average_after": _load(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument("--heads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--events-per-subject", type=int, default=10)
    args = parser.parse_args()
    emit(
        "checkpoint",
        {
            "database": "postgresql" if args.database_url else "sqlite",
            "cpus": os.cpu_count(),
            "checkpoint": bench_checkpoint(args.database_url, args.heads),
            "verify": bench_verify(args.database_url, args.events, args.events_per_subject),
        },
    )


if __name__ == "__main__":
    main()
