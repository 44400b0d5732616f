"""In-process decision speed: consentry's SDK replica vs pycasbin vs cedarpy, one workload.

    .venv/bin/python bench/decisions.py [--subjects 10000] [--requests 100000] [--peers ...]

Every peer answers the same requests (same subjects, permissions, request mix, 50% allowed);
each is first checked to give the expected answer on every request, then timed on the whole
list (µs/check is the loop's wall time divided by the checks, and ``cpu_us_per_check`` the
same with this thread's CPU time, which time slices lost to other processes on a shared
machine do not inflate; p50/p99 come from a separate per-call timing of a sample, which adds
the timer's own ~0.05 µs). Prints JSON.

Access pattern, the same for every peer: requests pick subjects uniformly at random, and the
timed pass repeats the requests of the checking pass. Each request carries its own copy of the
subject id (as a request to a service does), so only the engine's own structures are read at
random. With 10k subjects every structure then sits in the CPU caches; with 1M, nearly every
check reads memory no cache holds (a random read from a 100 MB structure costs ~0.2 µs on the
2-core EPYC VM the README quotes), which is what "cost in subject count" measures here.
Needs the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

from _common import emit
from _peers import PEERS
from _workload import Workload, build


def resident_mb() -> float:
    """This process's resident memory now (Linux), in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def measure(name: str, work: Workload, sample: int) -> dict[str, float | int | str]:
    gc.collect()
    before = resident_mb()
    started = time.perf_counter()
    check, close = PEERS[name](work)
    setup = time.perf_counter() - started
    gc.collect()
    # What the peer's loaded state holds on to (peers run one after another in this process;
    # memory an earlier peer freed may be reused, so this is a lower bound).
    rss = resident_mb() - before
    try:
        wrong = sum(
            check(*req) is not want for req, want in zip(work.requests, work.expected, strict=True)
        )
        if wrong:
            raise SystemExit(f"{name}: {wrong} answers differ from the expected ones")
        gc.collect()
        requests = work.requests
        started = time.perf_counter()
        cpu = time.thread_time()
        for subject, purpose, category, recipient in requests:
            check(subject, purpose, category, recipient)
        cpu = time.thread_time() - cpu
        elapsed = time.perf_counter() - started
        timer = time.perf_counter_ns
        laps = []
        for subject, purpose, category, recipient in requests[:sample]:
            t0 = timer()
            check(subject, purpose, category, recipient)
            laps.append(timer() - t0)
        laps.sort()
    finally:
        close()
    return {
        "peer": name,
        "setup_seconds": round(setup, 3),
        "rss_mb": round(rss, 1),
        "checks": len(requests),
        "us_per_check": round(elapsed / len(requests) * 1e6, 3),
        "cpu_us_per_check": round(cpu / len(requests) * 1e6, 3),
        "checks_per_second": round(len(requests) / elapsed),
        "p50_us": round(statistics.median(laps) / 1000, 3),
        "p99_us": round(laps[int(len(laps) * 0.99)] / 1000, 3),
    }


def ratios(results: list[dict[str, float | int | str]]) -> dict[str, float]:
    ours = next((r for r in results if r["peer"] == "consentry"), None)
    if ours is None:
        return {}
    out: dict[str, float] = {}
    for peer in results:
        if peer is ours:
            continue
        for field, label in (("us_per_check", "wall"), ("cpu_us_per_check", "cpu")):
            mine, theirs = float(ours[field]), float(peer[field])
            out[f"{peer['peer']} / consentry ({label})"] = round(theirs / mine, 1) if mine else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    args = parser.parse_args()
    work = build(args.subjects, args.requests)
    results = [measure(name, work, min(args.sample, args.requests)) for name in args.peers]
    emit(
        "decisions_in_process",
        {
            "subjects": args.subjects,
            "permissions": len(work.permissions),
            "policy_lines": len(work.rules),
            "allowed_share": round(sum(work.expected) / len(work.expected), 3),
            "peers": results,
            # How many times consentry's time per check each peer takes (wall, then CPU).
            "ratios": ratios(results),
        },
    )


if __name__ == "__main__":
    main()
