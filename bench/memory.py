"""Replica memory at scale: 1M subjects x 32 permissions in the SDK's in-memory replica.

    .venv/bin/python bench/memory.py [--subjects 1000000] [--permissions 32]

A synthetic catalogue of consent permissions; every subject gets a random choice (granted,
denied or none) on every permission, the worst case for the replica (no two subjects are
likely to share a state, so nothing is pooled). Subjects are loaded the way the SDK loads a
snapshot line (``Replica.load_masks``). Reports the process's resident-set growth and the
check speed at that size; with ``--trace``, also the bytes tracemalloc attributes to the
replica (slower, and tracemalloc's own bookkeeping then inflates the RSS figure). Prints JSON.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import time
import tracemalloc
from typing import Any

from _common import emit

from consentry.domain.catalogue import Catalogue
from consentry.replica.core import Replica


def catalogue(permissions: int) -> Catalogue:
    en = {"en": "x"}
    return Catalogue.model_validate(
        {
            "catalogue_version": "bench.1",
            "controller": {"name": "Bench", "contact": "privacy@example.com", "country": "NL"},
            "locales": ["en"],
            "default_locale": "en",
            "categories": {f"data.c{i}": {"label": en} for i in range(permissions)},
            "purposes": {f"purpose{i}": {"label": en} for i in range(permissions)},
            "recipients": {"shop": {"name": "Shop", "country": "NL", "kind": "controller"}},
            "permissions": [
                {
                    "id": f"perm{i}",
                    "purpose": f"purpose{i}",
                    "categories": [f"data.c{i}"],
                    "recipients": ["shop"],
                    "legal_basis": "consent",
                    "defaults": {"*": "denied"},
                    "notice": {"version": "1", "title": en, "text": en},
                }
                for i in range(permissions)
            ],
        }
    )


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--permissions", type=int, default=32)
    parser.add_argument("--checks", type=int, default=200_000)
    parser.add_argument("--trace", action="store_true", help="measure with tracemalloc")
    args = parser.parse_args()
    rng = random.Random(1)
    cat = catalogue(args.permissions)
    full = (1 << args.permissions) - 1
    gc.collect()
    rss_before = rss_bytes()
    if args.trace:
        tracemalloc.start()
    started = time.perf_counter()
    replica = Replica(cat, capacity=args.subjects)
    with replica.lock:
        for i in range(args.subjects):
            # Per permission: 00 none, 01 granted, 10 denied (random, independent).
            granted = rng.getrandbits(args.permissions)
            denied = rng.getrandbits(args.permissions) & ~granted & full
            replica.load_masks(f"user-{i:07d}", 1, None, granted, denied, {})
    load_seconds = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[0] if args.trace else 0
    tracemalloc.stop()
    gc.collect()
    rss_after = rss_bytes()
    checks: list[tuple[str, str, str]] = []
    for _ in range(args.checks):
        p = rng.randrange(args.permissions)
        checks.append((f"user-{rng.randrange(args.subjects):07d}", f"purpose{p}", f"data.c{p}"))
    check = replica.check
    started = time.perf_counter()
    allowed = sum(check(s, purpose, category).allowed for s, purpose, category in checks)
    elapsed = time.perf_counter() - started
    result: dict[str, Any] = {
        "subjects": len(replica),
        "permissions": args.permissions,
        "load_seconds": round(load_seconds, 2),
        "rss_growth_mb": round((rss_after - rss_before) / 1e6, 1),
        "rss_bytes_per_subject": round((rss_after - rss_before) / max(len(replica), 1), 1),
        "us_per_check_random_subject": round(elapsed / len(checks) * 1e6, 3),
        "allowed_share": round(allowed / len(checks), 3),
    }
    if args.trace:
        result["replica_mb_traced"] = round(traced / 1e6, 1)
        result["traced_bytes_per_subject"] = round(traced / max(len(replica), 1), 1)
    emit("replica_memory", result)


if __name__ == "__main__":
    main()
