"""Propagation through the real system: withdrawals over HTTP -> relay -> NATS -> SDK replicas.

    python bench/propagation_live.py --database-url postgresql+psycopg://127.0.0.1:5432/test \\
        [--rate 1000] [--duration 30] [--servers 2] [--replicas 3] [--phases nats,http,faults]

Starts ``consentry serve`` processes (``--servers``; without access log unless
``--access-log``: at a thousand requests a second, metrics rather than a log line per request)
and one ``consentry relay`` process on a
fresh PostgreSQL schema, publishing to a NATS JetStream stream of its own, and a webhook
receiver for the catalogue's ad network that fails 30 % of its requests. Subjects are granted
three permissions beforehand (one PATCH each, before any replica starts). Then, per phase, a
load generator process sends ``--rate`` withdrawals per second for ``--duration`` seconds
(``PUT /v1/subjects/{sid}/permissions/{pid}``, open loop, round robin over the servers, at most
``--concurrency`` in flight), and ``--replicas`` SDK processes, each a ``Consentry`` client, ask
their replica about the subjects being withdrawn (every ``--check-every`` ms, which bounds the
resolution) and note the wall-clock moment each one first answers ``allowed=False``:

- ``nats``: replicas follow JetStream (``follow="nats"``); withdrawals of ``recs``;
- ``http``: replicas follow the HTTP change feed (``follow="http"``), and the relay runs
  without NATS (it only marks rows and plans webhooks), as where no NATS runs; withdrawals of
  ``email``;
- ``faults``: JetStream replicas; withdrawals of ``ads`` (each owes the ad network a webhook);
  half-way, ``kill -9`` of the relay and of the last server, both restarted after
  ``--down`` seconds (the load generator sends a request that failed on a dead server once
  more to another one). At the end, for every replica: the changes it applied (its follower's
  ``applied`` counter, which counts a change only when it moves the replica) against the
  changes committed since its snapshot (outbox rows), and every acknowledged withdrawal
  refused; and every withdrawal's webhook acknowledged by the flaky receiver.

After the subjects are granted, their tables are vacuumed (as pgbench does before a run), so
that autovacuum does not run during a phase.

Latency: from the load generator receiving the 200 to a replica answering ``allowed=False``
(both wall clocks of this machine). CPU seconds per process (from /proc) show where the time
goes. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "tests" / "fixtures" / "mini.yaml"
CLI = [sys.executable, "-m", "consentry"]
SELF = [sys.executable, str(Path(__file__).resolve())]
SECRET_ENV = "CONSENTRY_BENCH_WEBHOOK_SECRET"
# Per phase: the permission withdrawn and the check that it turns off.
PHASES: dict[str, tuple[str, list[Any]]] = {
    "nats": ("recs", ["recommendations", ["behaviour.browsing"], None]),
    "http": ("email", ["marketing.email", ["profile.contact"], None]),
    "faults": ("ads", ["advertising", ["behaviour.browsing"], "adnet"]),
}
PHASES_PERMS = ("recs", "ads", "email")
TICKS = os.sysconf("SC_CLK_TCK")


def dist_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"n": 0}
    ms = sorted(1000 * s for s in seconds)

    def pct(q: float) -> float:
        return round(ms[min(len(ms) - 1, round(q * (len(ms) - 1)))], 1)

    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "max_ms": round(ms[-1], 1),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / TICKS


def cpu_by_name(pattern: str) -> float:
    """Total CPU seconds of every process whose command line contains ``pattern``."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pattern in cmd:
            total += cpu_seconds(int(entry.name))
    return total


# -- the replica process ---------------------------------------------------------------------


def replica_main(config: dict[str, Any]) -> None:
    """A service with a Consentry client: reports when each subject first reads as withdrawn."""
    from consentry.sdk import Consentry

    options: dict[str, Any] = {"stale_after": 5.0}
    if config["follow"] == "nats":
        options |= {
            "follow": "nats",
            "nats_url": config["nats_url"],
            "nats_stream": config["stream"],
            "nats_subject_prefix": config["prefix"],
        }
    else:
        options["follow"] = "http"
    sdk = Consentry(config["url"], api_key=config["key"], **options)
    prefix, count, window = config["subject_prefix"], config["count"], config["window"]
    purpose, categories, recipient = config["check"]
    subjects = [f"{prefix}{i}" for i in range(count)]
    seen: dict[int, float] = {}
    start_cursor = sdk.cursor
    print(json.dumps({"ready": True, "cursor": start_cursor}), flush=True)
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    watch: set[int] = set()
    frontier = 0  # every index below it is watched or seen
    every = config["check_every_ms"] / 1000
    last_report = 0.0
    highest = -1  # the highest index seen withdrawn
    while not stop.is_set():
        top = min(count, highest + window)
        while frontier < top:
            watch.add(frontier)
            frontier += 1
        allows = sdk.allows
        now = time.time()
        for i in [i for i in watch if not allows(subjects[i], purpose, categories, recipient)]:
            seen[i] = now
            watch.discard(i)
            highest = max(highest, i)
        if time.monotonic() - last_report >= 0.5:
            last_report = time.monotonic()
            follow = sdk.stats.follow
            print(json.dumps({"denied": len(seen), "applied": follow.applied}), flush=True)
        time.sleep(every)
    stats = sdk.stats.follow
    sdk.close()
    print(
        json.dumps(
            {
                "result": True,
                "start_cursor": start_cursor,
                "seen": seen,
                "cpu_s": round(time.process_time(), 1),
                "stats": vars(stats),
                "stale": sdk.stale,
            }
        ),
        flush=True,
    )


class Replica:
    """A replica process, as seen from the bench: its progress and its final report."""

    def __init__(self, config: dict[str, Any], log: IO[bytes]) -> None:
        self.proc = subprocess.Popen(
            [*SELF, "_replica", json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        self.progress: dict[str, Any] = {}
        self.result: dict[str, Any] | None = None
        self.ready = threading.Event()
        self.cursor = "0"
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            data = json.loads(line)
            if data.get("ready"):
                self.cursor = data["cursor"]
                self.ready.set()
            elif data.get("result"):
                self.result = data
            else:
                self.progress = data

    def finish(self, timeout: float = 60) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout)
        deadline = time.monotonic() + 5
        while self.result is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.result is None:
            raise RuntimeError("a replica ended without a report")
        return self.result


# -- the load generator process --------------------------------------------------------------


def loadgen_main(config: dict[str, Any]) -> None:
    """Withdrawals at a steady rate (open loop); prints when each one was acknowledged."""
    asyncio.run(_loadgen(config))


class _Conn:
    """One keep-alive HTTP/1.1 connection, written by hand: httpx costs the load generator
    ~5 ms of CPU per request here, which on 2 cores is taken from the server under test."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def put(self, path: str, body: bytes, auth: str) -> int:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {auth}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        try:
            self.writer.write(head.encode() + body)
            status_line = await self.reader.readuntil(b"\r\n")
            status = int(status_line.split()[1])
            length, close = 0, False
            while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and "close" in value.lower():
                    close = True
            await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            self.close()
            raise ConnectionError(f"{self.host}:{self.port}") from None
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.writer = None


async def _loadgen(config: dict[str, Any]) -> None:
    urls: list[str] = config["urls"]
    rate, duration, perm = config["rate"], config["duration"], config["perm"]
    total = int(rate * duration)
    prefix, key = config["subject_prefix"], config["key"]
    acked: dict[int, float] = {}
    failures: dict[str, int] = {}
    request_ms: list[float] = []
    body = b'{"state":"denied"}'
    todo: asyncio.Queue[int | None] = asyncio.Queue()
    addresses = []
    for url in urls:
        host, _, port = url.removeprefix("http://").partition(":")
        addresses.append((host, int(port)))

    async def worker(n: int) -> None:
        conns = [_Conn(*a) for a in addresses]
        while (i := await todo.get()) is not None:
            path = f"/v1/subjects/{prefix}{i}/permissions/{perm}"
            for attempt in range(2):  # a dead server: once more on another one
                target = (i + attempt) % len(conns)
                sent = time.perf_counter()
                try:
                    status = await conns[target].put(path, body, key)
                except ConnectionError:
                    failures["connection"] = failures.get("connection", 0) + 1
                    continue
                if status == 200:
                    acked[i] = time.time()
                    request_ms.append(1000 * (time.perf_counter() - sent))
                    break
                failures[str(status)] = failures.get(str(status), 0) + 1
                if status < 500:
                    break
        for c in conns:
            c.close()

    workers = [asyncio.create_task(worker(n)) for n in range(config["concurrency"])]
    started = time.perf_counter()
    behind = 0
    for i in range(total):
        wait = started + i / rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.05:
            behind += 1
        todo.put_nowait(i)
    sending = time.perf_counter() - started
    for _ in workers:
        todo.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - started
    ordered = sorted(request_ms)
    print(
        json.dumps(
            {
                "sent": total,
                "acked": acked,
                "failures": failures,
                "pacing_seconds": round(sending, 2),
                "seconds": round(elapsed, 2),
                "late_sends": behind,
                "cpu_s": round(time.process_time(), 1),
                "request_p50_ms": round(statistics.median(ordered), 1) if ordered else None,
                "request_p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 1)
                if ordered
                else None,
            }
        ),
        flush=True,
    )


# -- the webhook receiver --------------------------------------------------------------------


class FlakyReceiver(BaseHTTPRequestHandler):
    """Acknowledges 70 % of deliveries, answers 500 to the rest."""

    delivered: set[str] = set()
    attempts = 0
    refused = 0
    lock = threading.Lock()
    rng = random.Random(7)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with FlakyReceiver.lock:
            FlakyReceiver.attempts += 1
            fail = FlakyReceiver.rng.random() < 0.3
            if fail:
                FlakyReceiver.refused += 1
            else:
                FlakyReceiver.delivered.add(str(json.loads(body).get("subject")))
        self.send_response(500 if fail else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


# -- the system under test -------------------------------------------------------------------


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class System:
    def __init__(
        self, env: dict[str, str], servers: int, workdir: Path, *, access_log: bool
    ) -> None:
        self.env = env
        self.access_log = access_log
        self.workdir = workdir
        self.ports = [free_port() for _ in range(servers)]
        self.servers: list[subprocess.Popen[bytes] | None] = [None] * servers
        self.relay: subprocess.Popen[bytes] | None = None
        self.relay_nats = True
        self.cpu: dict[str, float] = {}  # CPU seconds of processes that were killed or ended
        self.log = (workdir / "system.log").open("ab")

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.ports]

    def cli(self, *words: str) -> str:
        done = subprocess.run(
            [*CLI, *words], env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def start_server(self, n: int) -> None:
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(self.ports[n])]
            + ([] if self.access_log else ["--no-access-log"]),
            env=self.env,
            stdout=self.log,
            stderr=self.log,
        )
        self.servers[n] = proc
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server {n} exited; see {self.workdir / 'system.log'}")
            try:
                if httpx.get(f"{self.urls[n]}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server {n} did not start")

    def start_relay(self, *, nats: bool = True) -> None:
        """The relay, publishing to NATS, or (``nats=False``, as where no NATS runs) only
        marking rows for the HTTP feed and planning webhooks."""
        env = dict(self.env)
        if not nats:
            env.pop("CONSENTRY_NATS_URL", None)
        self.relay_nats = nats
        self.relay = subprocess.Popen([*CLI, "relay"], env=env, stdout=self.log, stderr=self.log)

    def use_relay(self, *, nats: bool) -> None:
        if self.relay is not None and self.relay_nats == nats:
            return
        if self.relay is not None:
            self._note_cpu("relay", self.relay)
            self.relay.terminate()
            self.relay.wait(15)
        self.start_relay(nats=nats)

    def _note_cpu(self, name: str, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None:
            self.cpu[name] = self.cpu.get(name, 0.0) + cpu_seconds(proc.pid)

    def kill(self, name: str) -> None:
        proc = self.relay if name == "relay" else self.servers[int(name.split("-")[1])]
        assert proc is not None
        self._note_cpu(name, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def cpu_now(self) -> dict[str, float]:
        out = dict(self.cpu)
        for n, proc in enumerate(self.servers):
            if proc is not None and proc.poll() is None:
                out[f"server-{n}"] = out.get(f"server-{n}", 0.0) + cpu_seconds(proc.pid)
        if self.relay is not None and self.relay.poll() is None:
            out["relay"] = out.get("relay", 0.0) + cpu_seconds(self.relay.pid)
        return out

    def stop(self) -> None:
        for proc in [*self.servers, self.relay]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.log.close()


def grant_all(urls: list[str], key: str, prefix: str, count: int) -> float:
    """Grant recs, ads and email to every subject (one PATCH each); returns seconds taken."""
    body = {
        "set": dict.fromkeys(PHASES_PERMS, "granted"),
        # The notices the subjects were shown (the test catalogue's current versions).
        "notice_versions": {"recs": "2", "ads": "3", "email": "1"},
    }
    started = time.perf_counter()

    async def run() -> None:
        limit = asyncio.Semaphore(32)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(headers=headers, timeout=60) as client:

            async def one(i: int) -> None:
                async with limit:
                    url = urls[i % len(urls)]
                    r = await client.patch(f"{url}/v1/subjects/{prefix}{i}/permissions", json=body)
                    if r.status_code != 200:
                        raise RuntimeError(f"granting failed: {r.status_code} {r.text[:200]}")

            await asyncio.gather(*(one(i) for i in range(count)))

    asyncio.run(run())
    return time.perf_counter() - started


def db_count(url: str, sql: str, **params: Any) -> int:
    import psycopg

    plain, _, query = url.replace("postgresql+psycopg://", "postgresql://").partition("?")
    schema = query.split("search_path%3D", 1)[1] if "search_path%3D" in query else "public"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        cursor = conn.execute(sql, params)
        row = cursor.fetchone() if cursor.description else None
    return int(row[0]) if row else 0


def run_phase(
    name: str,
    args: argparse.Namespace,
    system: System,
    keys: dict[str, str],
    nats_names: dict[str, str],
    database_url: str,
) -> dict[str, Any]:
    perm, check = PHASES[name]
    count = int(args.rate * args.duration)
    log = (system.workdir / f"{name}.log").open("ab")
    follow = "http" if name == "http" else "nats"
    replicas = [
        Replica(
            {
                "follow": follow,
                "url": system.urls[n % len(system.urls)],
                "key": keys["decide"],
                "nats_url": args.nats,
                **nats_names,
                "subject_prefix": "sub-",
                "count": count,
                "window": args.window,
                "check": check,
                "check_every_ms": args.check_every,
            },
            log,
        )
        for n in range(args.replicas)
    ]
    for r in replicas:
        if not r.ready.wait(120):
            raise RuntimeError(f"a replica did not start; see {system.workdir / f'{name}.log'}")
    cpu_before = system.cpu_now()
    names_cpu_before = {p: cpu_by_name(p) for p in ("nats-server", "postgres")}
    load_config = {
        "urls": system.urls,
        "key": keys["write"],
        "rate": args.rate,
        "duration": args.duration,
        "perm": perm,
        "subject_prefix": "sub-",
        "concurrency": args.concurrency,
    }
    loadgen = subprocess.Popen(
        [*SELF, "_loadgen", json.dumps(load_config)], stdout=subprocess.PIPE, stderr=log, text=True
    )
    events: list[str] = []
    if name == "faults":
        time.sleep(args.duration / 2)
        victim = f"server-{len(system.servers) - 1}"
        system.kill("relay")
        system.kill(victim)
        events.append(f"kill -9 relay and {victim} at {args.duration / 2:.0f} s")
        time.sleep(args.down)
        system.start_relay()
        system.start_server(len(system.servers) - 1)
        events.append(f"both restarted after {args.down:.0f} s")
    out, _ = loadgen.communicate(timeout=args.duration * 20 + 300)
    load = json.loads(out)
    acked = {int(i): t for i, t in load.pop("acked").items()}
    # Wait until every replica refuses every acknowledged withdrawal (or give up).
    deadline = time.monotonic() + args.settle
    while time.monotonic() < deadline:
        if all(r.progress.get("denied", 0) >= len(acked) for r in replicas):
            break
        time.sleep(0.2)
    time.sleep(1.0)  # late duplicates, if any, would show in the counters now
    cpu_after = system.cpu_now()
    reports = [r.finish() for r in replicas]
    log.close()
    result: dict[str, Any] = {
        "follow": follow,
        "permission": perm,
        "offered_rate": args.rate,
        "duration_s": args.duration,
        "load": load,
        "acknowledged": len(acked),
        # Withdrawals acknowledged per second, until the last one was (the queue drained).
        "acknowledged_per_s": round(len(acked) / load["seconds"], 1),
        "events": events,
    }
    latencies: list[float] = []
    per_replica = []
    for n, report in enumerate(reports):
        seen = {int(i): t for i, t in report["seen"].items()}
        mine = [seen[i] - t for i, t in acked.items() if i in seen]
        latencies += mine
        position = int(report["start_cursor"].split(".")[0])
        committed = db_count(
            database_url, "SELECT count(*) FROM outbox WHERE position > %(p)s", p=position
        )
        stats = report["stats"]
        per_replica.append(
            {
                "replica": n,
                "latency": dist_ms(mine),
                "acknowledged_refused": sum(1 for i in acked if i in seen),
                "acknowledged_missing": sum(1 for i in acked if i not in seen),
                "committed_since_snapshot": committed,
                "applied": stats["applied"],
                "applied_equals_committed": stats["applied"] == committed,
                "duplicates_dropped": stats["duplicates"],
                "skipped": stats["skipped"],
                "gaps": stats["gaps"],
                "reloads": stats["reloads"],
                "reconnects": stats["reconnects"],
                "cpu_s": report["cpu_s"],
            }
        )
    result["latency_all_replicas"] = dist_ms(latencies)
    # Under CPU contention a replica can refuse before the load generator has read the 200.
    result["refused_before_the_200_read"] = sum(1 for x in latencies if x <= 0)
    result["load_average_after"] = os.getloadavg()
    result["replicas"] = per_replica
    result["cpu_seconds"] = {
        **{k: round(v - cpu_before.get(k, 0.0), 1) for k, v in cpu_after.items()},
        **{p: round(cpu_by_name(p) - v, 1) for p, v in names_cpu_before.items()},
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="postgresql+psycopg://127.0.0.1:5432/test")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--rate", type=float, default=1000, help="withdrawals per second")
    parser.add_argument("--duration", type=float, default=30, help="seconds of load per phase")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight, max")
    parser.add_argument("--phases", default="nats,http,faults")
    parser.add_argument(
        "--down", type=float, default=2.0, help="seconds killed processes stay down"
    )
    parser.add_argument("--settle", type=float, default=120, help="seconds to wait for replicas")
    parser.add_argument("--window", type=int, default=400, help="subjects a replica watches ahead")
    parser.add_argument("--check-every", type=float, default=5.0, help="ms between replica scans")
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="servers log every request (off by default, as for a server under this load)",
    )
    args = parser.parse_args()
    phases = [p for p in args.phases.split(",") if p]
    run = uuid.uuid4().hex[:8]
    nats_names = {"stream": f"BENCH_{run.upper()}", "prefix": f"bench.{run}.changes"}
    workdir = Path(tempfile.mkdtemp(prefix="consentry-propagation-"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyReceiver)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    data = yaml.safe_load(MINI.read_text(encoding="utf-8"))
    hook = f"http://127.0.0.1:{server.server_address[1]}/adnet"
    data["recipients"]["adnet"]["webhook"] = {"url": hook, "secret_env": SECRET_ENV}
    catalogue = workdir / "catalogue.yaml"
    catalogue.write_text(yaml.safe_dump(data), encoding="utf-8")
    results: dict[str, Any] = {
        "servers": args.servers,
        "replicas": args.replicas,
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "access_log": args.access_log,
        "workdir": str(workdir),
    }
    with fresh_schema(args.database_url) as database_url:
        env = {
            **os.environ,
            "CONSENTRY_DATABASE_URL": database_url,
            "CONSENTRY_CATALOGUE": str(catalogue),
            "CONSENTRY_JWT_SECRET": secrets.token_urlsafe(48),
            "CONSENTRY_NATS_URL": args.nats,
            "CONSENTRY_NATS_STREAM": nats_names["stream"],
            "CONSENTRY_NATS_SUBJECT_PREFIX": nats_names["prefix"],
            "CONSENTRY_RELAY": "off",
            "CONSENTRY_RATE_LIMIT_PER_KEY": "0",
            "CONSENTRY_RATE_LIMIT_PER_SUBJECT": "0",
            # 30 % failures: 20 attempts leave 0.3**20 per delivery to the dead letters.
            "CONSENTRY_WEBHOOK_MAX_ATTEMPTS": "20",
            "CONSENTRY_WEBHOOK_BACKOFF": "0.05",
            SECRET_ENV: "bench-secret-" + secrets.token_hex(16),
        }
        env.pop("CONSENTRY_DEMO", None)
        system = System(env, args.servers, workdir, access_log=args.access_log)
        try:
            system.cli("db", "upgrade")
            keys = {
                "write": system.cli("keys", "create", "--scope", "subjects:write"),
                "decide": system.cli("keys", "create", "--scope", "decide"),
            }
            for n in range(args.servers):
                system.start_server(n)
            system.start_relay()
            count = int(args.rate * args.duration)
            results["granting_s"] = round(grant_all(system.urls, keys["write"], "sub-", count), 1)
            results["subjects"] = count
            # As pgbench does: the tables the setup filled are vacuumed before anything is
            # measured, rather than by autovacuum during a phase.
            started = time.monotonic()
            db_count(database_url, "VACUUM ANALYZE subjects, events, permission_states, outbox")
            results["vacuum_s"] = round(time.monotonic() - started, 1)
            for phase in phases:
                # The HTTP feed alone: no NATS in the system, as in an embedded deployment.
                system.use_relay(nats=phase != "http")
                results[phase] = run_phase(phase, args, system, keys, nats_names, database_url)
                results[phase]["relay_publishes_to_nats"] = system.relay_nats
            if "faults" in phases:
                results["webhooks"] = wait_webhooks(results["faults"]["acknowledged"], database_url)
        finally:
            system.stop()
            server.shutdown()
            delete_stream(args.nats, nats_names["stream"])
    print(json.dumps({"benchmark": "propagation_live", "results": results}, indent=2))


def wait_webhooks(acknowledged: int, database_url: str, timeout: float = 300) -> dict[str, Any]:
    """Wait until every withdrawal of ``ads`` has had its webhook acknowledged."""
    owed = db_count(
        database_url,
        "SELECT count(*) FROM permission_states WHERE permission_id = 'ads' AND state = 'denied'",
    )
    started = time.monotonic()
    while time.monotonic() - started < timeout and len(FlakyReceiver.delivered) < owed:
        time.sleep(0.5)
    dead = db_count(database_url, "SELECT count(*) FROM webhook_deliveries WHERE status = 'dead'")
    return {
        "withdrawals_committed": owed,
        "withdrawals_acknowledged": acknowledged,
        "delivered_distinct": len(FlakyReceiver.delivered),
        "all_delivered": len(FlakyReceiver.delivered) >= owed,
        "receiver_attempts": FlakyReceiver.attempts,
        "receiver_refused": FlakyReceiver.refused,
        "dead_letters": dead,
        "waited_s": round(time.monotonic() - started, 1),
    }


def delete_stream(url: str, stream: str) -> None:
    import nats

    async def run() -> None:
        nc = await nats.connect(url, allow_reconnect=False)
        try:
            await nc.jetstream().delete_stream(stream)
        except Exception:
            pass
        await nc.close()

    asyncio.run(run())


ROLES: dict[str, Callable[[dict[str, Any]], None]] = {
    "_replica": replica_main,
    "_loadgen": loadgen_main,
}

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ROLES:
        ROLES[sys.argv[1]](json.loads(sys.argv[2]))
    else:
        main()
