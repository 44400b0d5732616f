"""Load and soak: the real server under a mix of customers and services, for minutes.

    .venv/bin/python bench/load.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        [--duration 600] [--warmup 60] [--check]

Starts ``consentry serve`` on a free loopback port (production settings, rate limits on, the
demo catalogue) and runs, each at a steady pace, in its own threads:

* page views: customers signed in on the Permissions page (session cookie) load it again;
* toggles: customers' apps grant or withdraw a permission (PUT, subject token);
* decisions: a platform service asks POST /v1/decisions about random customers;
* change-feed followers: SDK replicas long-poll GET /v1/changes from their cursor.

Prints JSON: requests and errors per endpoint, p50/p95/p99 latency, the server's resident
memory after the warm-up and at the end. With ``--check`` it exits 1 unless there was no
error and memory grew by less than 10% after the warm-up. Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
from _common import emit

from consentry.catalogue_io import load_catalogue
from consentry.config import Settings
from consentry.services.tokens import TokenService

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "catalogues" / "marketplace.yaml"
CLI = [sys.executable, "-m", "consentry"]


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def record(self, name: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latency[name].append(seconds)
            if error is not None:
                self.errors[name].append(error)

    def report(self) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        for name, laps in sorted(self.latency.items()):
            ordered = sorted(laps)

            def pct(p: float, ordered: list[float] = ordered) -> float:
                return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

            out[name] = {
                "requests": len(laps),
                "errors": len(self.errors[name]),
                "first_errors": self.errors[name][:3],
                "p50_ms": pct(0.50),
                "p95_ms": pct(0.95),
                "p99_ms": pct(0.99),
                "mean_ms": round(1000 * statistics.fmean(laps), 2),
            }
        return out


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (uvicorn workers), from /proc."""
    total = 0
    for proc in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def _children(pid: int) -> list[int]:
    try:
        direct = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = [int(c) for c in direct]
    for child in list(found):
        found += _children(child)
    return found


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def paced(stop: float, rate: float, work: Callable[[], None]) -> None:
    """Call ``work`` ``rate`` times a second until ``stop`` (late calls catch up, not burst)."""
    interval = 1.0 / rate
    due = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= stop:
            return
        if now < due:
            time.sleep(min(due - now, stop - now))
            continue
        work()
        due = max(due + interval, time.monotonic() - interval)


def timed(stats: Stats, name: str, call: Callable[[], httpx.Response], ok: set[int]) -> None:
    started = time.perf_counter()
    try:
        answer = call()
        error = None if answer.status_code in ok else f"{answer.status_code} {answer.text[:120]}"
    except httpx.HTTPError as exc:
        error = repr(exc)
    stats.record(name, time.perf_counter() - started, error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--duration", type=float, default=600, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=60, help="seconds before memory counts")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--page-views", type=float, default=10, help="per second")
    parser.add_argument("--toggles", type=float, default=20, help="per second")
    parser.add_argument("--decisions", type=float, default=150, help="per second")
    parser.add_argument("--followers", type=int, default=4)
    parser.add_argument("--check", action="store_true", help="exit 1 on errors or memory growth")
    args = parser.parse_args()

    database_url, drop = _fresh_schema(args.database_url)
    try:
        run(args, database_url)
    finally:
        drop()


def _fresh_schema(url: str) -> tuple[str, Callable[[], None]]:
    """On PostgreSQL, a new schema for this run (dropped afterwards); SQLite URLs as given."""
    if not url.startswith("postgresql"):
        return url, lambda: None
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"load_{secrets.token_hex(4)}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


def run(args: argparse.Namespace, database_url: str) -> None:
    catalogue = load_catalogue(CATALOGUE)
    toggleable = [p for p in catalogue.permissions if p.toggleable]
    workdir = Path(tempfile.mkdtemp(prefix="consentry-load-"))
    env = {
        **os.environ,
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_CATALOGUE": str(CATALOGUE),
        "CONSENTRY_JWT_SECRET": secrets.token_urlsafe(48),
    }
    env.pop("CONSENTRY_DEMO", None)

    def cli(*words: str) -> str:
        done = subprocess.run([*CLI, *words], env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    decide_key = cli("keys", "create", "--scope", "decide", "--name", "load-decisions")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    stats = Stats()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit(f"server did not start; see {workdir / 'server.log'}")
            time.sleep(0.1)
        customers = [f"load-{i:05d}" for i in range(args.customers)]
        signer = TokenService(Settings(jwt_secret=env["CONSENTRY_JWT_SECRET"]))
        tokens = {c: signer.issue(c) for c in customers[:50]}  # app and page users

        def toggler(seed: int, stop: float, rate: float) -> None:
            rng = random.Random(seed)
            mine = list(tokens)[seed::4]
            with httpx.Client(base_url=base, timeout=30) as http:

                def one() -> None:
                    sid = rng.choice(mine)
                    perm = rng.choice(toggleable)
                    state = rng.choice(("granted", "denied"))
                    timed(
                        stats,
                        "PUT /v1/subjects/{sid}/permissions/{pid}",
                        lambda: http.put(
                            f"/v1/subjects/{sid}/permissions/{perm.id}",
                            json={"state": state, "notice_version": perm.notice.version},
                            headers={"Authorization": f"Bearer {tokens[sid]}"},
                        ),
                        {200},
                    )

                paced(stop, rate, one)

        def viewer(seed: int, stop: float, rate: float) -> None:
            sid = list(tokens)[-1 - seed]
            with httpx.Client(base_url=base, timeout=30) as http:
                opened = http.get(f"/permissions?token={tokens[sid]}", follow_redirects=False)
                if opened.status_code != 303:
                    stats.record("GET /permissions", 0.0, f"sign-in {opened.status_code}")
                    return
                paced(
                    stop,
                    rate,
                    lambda: timed(
                        stats, "GET /permissions", lambda: http.get("/permissions"), {200}
                    ),
                )

        def decider(seed: int, stop: float, rate: float) -> None:
            rng = random.Random(seed)
            auth = {"Authorization": f"Bearer {decide_key}"}
            with httpx.Client(base_url=base, timeout=30, headers=auth) as http:

                def one() -> None:
                    perm = rng.choice(catalogue.permissions)
                    body = {
                        "subject": rng.choice(customers),
                        "purpose": perm.purpose,
                        "categories": list(perm.categories[:2]),
                        "recipient": rng.choice(perm.recipients),
                    }
                    timed(
                        stats,
                        "POST /v1/decisions",
                        lambda: http.post("/v1/decisions", json=body),
                        {200},
                    )

                paced(stop, rate, one)

        def follower(stop: float) -> None:
            auth = {"Authorization": f"Bearer {decide_key}"}
            cursor = "0"
            with httpx.Client(base_url=base, timeout=60, headers=auth) as http:
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    try:
                        answer = http.get("/v1/changes", params={"after": cursor, "wait": 5})
                        error = None if answer.status_code == 200 else str(answer.status_code)
                        cursor = answer.headers.get("Consentry-Cursor", cursor)
                    except httpx.HTTPError as exc:
                        error = repr(exc)
                    stats.record(
                        "GET /v1/changes (long poll)", time.perf_counter() - started, error
                    )

        stop = time.monotonic() + args.duration
        threads = [
            *[threading.Thread(target=toggler, args=(s, stop, args.toggles / 4)) for s in range(4)],
            *[
                threading.Thread(target=viewer, args=(s, stop, args.page_views / 4))
                for s in range(4)
            ],
            *[
                threading.Thread(target=decider, args=(s, stop, args.decisions / 4))
                for s in range(4)
            ],
            *[threading.Thread(target=follower, args=(stop,)) for _ in range(args.followers)],
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        rss: list[tuple[float, int]] = []
        while time.monotonic() < stop:
            rss.append((round(time.monotonic() - started, 1), rss_kib(server.pid)))
            time.sleep(5)
        for t in threads:
            t.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    after_warmup = [kib for at, kib in rss if at >= args.warmup] or [kib for _, kib in rss]
    base_rss, end_rss = after_warmup[0], after_warmup[-1]
    growth = round(100 * (end_rss - base_rss) / base_rss, 1)
    endpoints = stats.report()
    errors = sum(int(str(e["errors"])) for e in endpoints.values())
    emit(
        "load",
        {
            "database": args.database_url.split(":", 1)[0],
            "duration_s": args.duration,
            "endpoints": endpoints,
            "errors": errors,
            "rss_kib_after_warmup": base_rss,
            "rss_kib_end": end_rss,
            "rss_kib_peak": max(kib for _, kib in rss),
            "rss_growth_percent": growth,
            "server_log": str(workdir / "server.log"),
        },
    )
    if args.check and (errors or growth >= 10):
        sys.exit(1)


if __name__ == "__main__":
    main()
