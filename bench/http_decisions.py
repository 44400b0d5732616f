"""HTTP decision speed: consentry's server vs a FastAPI + pycasbin service, one workload.

    .venv/bin/python bench/http_decisions.py [--subjects 10000] [--workers 1] [--connections 32]
        [--batch 1000] [--batch-connections 4] [--seconds 8] [--rounds 3] [--peers ...]

(The issue calls this ``bench/http.py``; a script of that name in ``bench/`` would shadow the
standard library's ``http`` package for every script run from this directory, httpx included.)

Both servers run under the same ASGI server and settings (uvicorn, uvloop, httptools, no
access log, ``--workers``), on loopback, and are driven by the same load generator
(``bench/loadgen.py``, one process, keep-alive connections, one request in flight each) with
the same request bodies (50% allowed): single checks (``POST /v1/decisions``) and batches of
``--batch`` checks (``POST /v1/decisions/batch``; decisions/s = batches/s x batch size).
consentry runs as deployed (``consentry.asgi:create``: SQLite, API keys checked in the
database then cached, decisions from its in-process replica); its per-key rate limit is
raised so that the bench's single key is never refused (the limiter still runs on every
request); the pycasbin service keeps its key in memory and has no limiter. Each server's
answers are checked against the expected ones first.

All servers stay up for the whole run and take turns, ``--rounds`` times, so that what else
the machine does reaches them alike; each row is the peer's median round (all rounds are
listed). ``server_cpu_us_per_request`` is the server processes' CPU time divided by the
requests served, which preemption by other processes does not inflate. The diagnostic peer
``consentry (decision router only, diagnostic)`` (bench/consentry_lean.py: FastAPI with the
decision routes alone, no fast path) can be added with ``--peers``.
Prints JSON. Needs the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from _common import emit
from _workload import CATALOGUE, Workload, build
from pydantic import SecretStr
from sqlalchemy import insert

from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.domain.events import GENESIS
from consentry.storage.pseudonyms import new_ref
from consentry.storage.tables import permission_states, subjects

HERE = Path(__file__).resolve().parent
# name -> (uvicorn factory, environment)
PEERS = {
    "consentry": ("consentry.asgi:create", "consentry"),
    "fastapi+pycasbin": ("casbin_app:create", "casbin"),
    "consentry (decision router only, diagnostic)": ("consentry_lean:create", "consentry"),
}
DEFAULT_PEERS = ["consentry", "fastapi+pycasbin"]
SECRET = "bench-secret-" + "x" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def populate(url: str, work: Workload) -> str:
    """The workload's subjects straight into the projection tables (the ledger is not what
    is measured here), and a service key with the decide scope."""
    settings = Settings(database_url=url, catalogue=CATALOGUE, jwt_secret=SecretStr(SECRET))
    container = bootstrap(settings)
    now = datetime.now(UTC)
    with container.db.write() as conn:
        conn.execute(
            insert(subjects),
            [
                {
                    "subject_ref": new_ref(),
                    "subject_id": sid,
                    "jurisdiction": None,
                    "head_seq": len(work.choices[sid]),
                    "head_hash": GENESIS,
                    "created_at": now,
                    "updated_at": now,
                }
                for sid in work.subjects
            ],
        )
        rows = [
            {
                "subject_id": sid,
                "permission_id": c.permission_id,
                "state": c.state.value,
                "options": "{}",
                "notice_version": c.notice_version,
                "source": "api",
                "updated_at": now,
                "expires_at": None,
                "event_id": f"bench-{i}",
            }
            for sid in work.subjects
            for i, c in enumerate(work.choices[sid].values())
        ]
        conn.execute(insert(permission_states), rows)
    key = container.keys.create(["decide"], name="bench")
    container.close()
    return key


def serve(app: list[str], port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        *app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return subprocess.Popen(command, env={**os.environ, **env}, cwd=HERE)


def body(request: tuple[str, str, str, str]) -> dict[str, Any]:
    subject, purpose, category, recipient = request
    return {
        "subject": subject,
        "purpose": purpose,
        "categories": [category],
        "recipient": recipient,
    }


def check_answers(url: str, key: str, work: Workload, count: int) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        while True:
            try:
                client.post(url, json=body(work.requests[0]))
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        time.sleep(1.0)  # consentry loads its replica on the first decision
        for request, want in list(zip(work.requests, work.expected, strict=True))[:count]:
            got = client.post(url, json=body(request)).json()["allowed"]
            if got is not want:
                raise SystemExit(f"{url}: {request} answered {got}, expected {want}")


def load(
    url: str, key: str, bodies: str, connections: int, args: argparse.Namespace
) -> dict[str, Any]:
    command = [
        sys.executable,
        str(HERE / "loadgen.py"),
        "--url",
        url,
        "--bodies",
        bodies,
        "--key",
        key,
        "--connections",
        str(connections),
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children (uvicorn's workers)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def measured(
    server: subprocess.Popen[bytes],
    url: str,
    key: str,
    bodies: str,
    connections: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The load generator's figures, plus the server's CPU time per request (warm-up
    included in both the time and the request count it is divided by, roughly)."""
    before = cpu_seconds(server.pid)
    result = load(url, key, bodies, connections, args)
    used = cpu_seconds(server.pid) - before
    sent = result["throughput_rps"] * (args.seconds + args.warmup)
    result["server_cpu_share"] = round(used / (args.seconds + args.warmup), 2)
    result["server_cpu_us_per_request"] = round(used / sent * 1e6, 1) if sent else None
    return result


def check_batch(url: str, key: str, work: Workload, size: int) -> None:
    checks = [body(r) for r in work.requests[:size]]
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        answer = client.post(url, json={"checks": checks})
        answer.raise_for_status()
        got = [r["allowed"] for r in answer.json()["results"]]
    if got != work.expected[:size]:
        raise SystemExit(f"{url}: batch answers differ from the expected ones")


@dataclass
class Peer:
    name: str
    server: subprocess.Popen[bytes]
    url: str


def start_peer(
    name: str, env: dict[str, str], key: str, work: Workload, args: argparse.Namespace
) -> Peer:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/decisions"
    server = serve(["--factory", PEERS[name][0]], port, args.workers, env)
    check_answers(url, key, work, args.verify)
    if args.batch:
        check_batch(url + "/batch", key, work, args.batch)
    return Peer(name, server, url)


def one_round(
    peer: Peer, key: str, files: tuple[str, str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    single = measured(peer.server, peer.url, key, files[0], args.connections, args)
    rows = [
        {"peer": peer.name, "kind": "single", "decisions_per_second": single["throughput_rps"]}
        | single
    ]
    if args.batch:
        url = peer.url + "/batch"
        batch = measured(peer.server, url, key, files[1], args.batch_connections, args)
        per_second = round(batch["throughput_rps"] * args.batch)
        kind = f"batch of {args.batch}"
        rows.append({"peer": peer.name, "kind": kind, "decisions_per_second": per_second} | batch)
    return rows


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per peer and kind: the round with the median throughput (its latencies with it)."""
    out = []
    for peer, kind in dict.fromkeys((r["peer"], r["kind"]) for r in rows):
        mine = sorted(
            (r for r in rows if (r["peer"], r["kind"]) == (peer, kind)),
            key=lambda r: r["decisions_per_second"],
        )
        median = mine[len(mine) // 2]
        out.append(median | {"rounds": [r["decisions_per_second"] for r in mine]})
    return out


def ratios(results: list[dict[str, Any]]) -> dict[str, float]:
    """consentry's median decisions/s over each other peer's, per kind."""
    best = {(r["peer"], r["kind"]): r["decisions_per_second"] for r in results}
    out = {}
    for (peer, kind), value in best.items():
        ours = best.get(("consentry", kind))
        if peer != "consentry" and ours and value:
            out[f"{kind}: consentry / {peer}"] = round(ours / value, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--bodies", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8, help="per peer, kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--verify", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1000, help="checks per batch (0: none)")
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--peers", nargs="+", default=DEFAULT_PEERS, choices=list(PEERS))
    args = parser.parse_args()
    work = build(args.subjects, args.bodies)
    with tempfile.TemporaryDirectory(prefix="consentry-bench-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        key = populate(url, work)
        bodies = f"{tmp}/bodies.json"
        Path(bodies).write_text(json.dumps([body(r) for r in work.requests]))
        batches = f"{tmp}/batches.json"
        size = max(args.batch, 1)
        Path(batches).write_text(
            json.dumps(
                [
                    {"checks": [body(r) for r in work.requests[i : i + size]]}
                    for i in range(0, len(work.requests) - size + 1, size)
                ]
            )
        )
        workload = f"{tmp}/casbin.json"
        Path(workload).write_text(
            json.dumps(
                {
                    "key": key,
                    "rules": [list(r) for r in work.rules],
                    "grouping": [[s, p] for s, ps in work.effective.items() for p in ps],
                }
            )
        )
        envs = {
            "consentry": {
                "CONSENTRY_DATABASE_URL": url,
                "CONSENTRY_CATALOGUE": str(CATALOGUE),
                "CONSENTRY_JWT_SECRET": SECRET,
                # The limiter still runs on every request; the bench's one key must not hit it.
                "CONSENTRY_RATE_LIMIT_PER_KEY": "100000000",
                "CONSENTRY_RATE_LIMIT_KEY_BURST": "100000000",
            },
            "casbin": {"CONSENTRY_BENCH_WORKLOAD": workload},
        }
        # Every server runs for the whole bench; the peers take turns, round after round, so
        # a change in what else the machine is doing reaches them alike.
        peers: list[Peer] = []
        rows: list[dict[str, Any]] = []
        try:
            for name in args.peers:
                peers.append(start_peer(name, envs[PEERS[name][1]], key, work, args))
            for _ in range(args.rounds):
                for peer in peers:
                    rows += one_round(peer, key, (bodies, batches), args)
        finally:
            for peer in peers:
                peer.server.terminate()
                peer.server.wait(timeout=30)
        results = summary(rows)
    emit(
        "decisions_http",
        {
            "subjects": args.subjects,
            "workers": args.workers,
            "server": "uvicorn (uvloop, httptools, no access log)",
            "allowed_share": round(sum(work.expected) / len(work.expected), 3),
            "batch_connections": args.batch_connections,
            "rounds": args.rounds,
            "ratios": ratios(results),
            "peers": results,
        },
    )


if __name__ == "__main__":
    main()
