"""Ledger write throughput: consent changes per second through the service layer.

    python bench/writes.py [--database-url URL] [--changes N] [--threads T]

Each change appends a hash-chained event, updates the projection and writes an outbox row in
one transaction. Prints JSON.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from _common import emit

from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.domain.state import ChoiceState
from consentry.services.consents import Change, Context

CATALOGUE = Path(__file__).resolve().parents[1] / "catalogues" / "marketplace.yaml"


def run(url: str, changes: int, threads: int) -> dict[str, float | int | str]:
    container = bootstrap(Settings(database_url=url, catalogue=CATALOGUE, demo=True))
    pids = [p.id for p in container.catalogue.permissions if p.toggleable][:8]
    per_thread = changes // threads

    def writer(t: int) -> None:
        for i in range(per_thread):
            state = ChoiceState.GRANTED if (i // len(pids)) % 2 == 0 else ChoiceState.DENIED
            container.consents.change(
                f"bench-{t}-{i % 50}", [Change(pids[i % len(pids)], state)], Context(source="api")
            )

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    container.close()
    done = per_thread * threads
    return {
        "database": url.split(":", 1)[0],
        "changes": done,
        "threads": threads,
        "seconds": round(elapsed, 3),
        "changes_per_second": round(done / elapsed, 1),
    }


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
