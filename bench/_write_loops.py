"""The loops of ``bench/writes.py``: who sends the changes, how, and what is measured."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.storage import postgres

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


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": round(1000 * ordered[-1], 2)}


class Meter:
    """CPU of this process and of the PostgreSQL backends that served it, and the batches of
    the group commit, between ``start`` and ``stop``."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.backends: set[int] = set()
        driver_rows = postgres.driver_rows

        def noted(conn: Any, sql: str, params: Any) -> Any:  # which backends served us
            self.backends.add(int(conn.connection.driver_connection.info.backend_pid))
            return driver_rows(conn, sql, params)

        postgres.driver_rows = noted
        self._driver_rows = driver_rows

    def _batches_so_far(self) -> tuple[int, int]:
        """(batches, changes) of the group commit so far ((0, 0) for a tree without one)."""
        batcher = getattr(self.container.db, "batcher", None)
        return (batcher().batches, batcher().changes) if batcher is not None else (0, 0)

    def start(self) -> None:
        self._batches, self._changes = self._batches_so_far()
        self._database = backend_cpu(self.backends)
        self._cpu = time.process_time()
        self._wall = time.perf_counter()

    def stop(self, done: int) -> dict[str, Any]:
        elapsed = time.perf_counter() - self._wall
        cpu = time.process_time() - self._cpu
        batches, changes = self._batches_so_far()
        batches -= self._batches
        result: dict[str, Any] = {
            "changes": done,
            "seconds": round(elapsed, 3),
            "changes_per_second": round(done / elapsed, 1),
            "process_cpu_ms_per_change": round(1000 * cpu / done, 3),
        }
        if self.backends:
            database = backend_cpu(self.backends) - self._database
            result["database_backend_cpu_ms_per_change"] = round(1000 * database / done, 3)
        if batches:
            result["changes_per_batch"] = round((changes - self._changes) / batches, 2)
        result["load_average"] = Path("/proc/loadavg").read_text().split()[:3]
        return result

    def close(self) -> None:
        postgres.driver_rows = self._driver_rows


RUN = uuid.uuid4().hex[:8]  # subjects of this run only: every change moves a choice


def _change(i: int, pids: list[str], subjects: int, tag: str) -> tuple[str, list[Change]]:
    """The i-th change of a writer: subjects in turn, and on each subject permissions in turn,
    granted then denied, so that every change records an event."""
    turn, subject = divmod(i, subjects)
    state = ChoiceState.GRANTED if (turn // len(pids)) % 2 == 0 else ChoiceState.DENIED
    return f"{RUN}-{tag}-{subject}", [Change(pids[turn % len(pids)], state)]


async def _change_on_loop(container: Any, sid: str, change: list[Change], context: Context) -> Any:
    """One change from the event loop, as the API's PUT sends it; a tree without the loop's
    path runs it in a worker thread, as its API did. Fails if the change moved nothing."""
    outcome = await container.consents.change_on_loop(sid, change[0], context)
    if outcome is None:
        outcome = await asyncio.to_thread(container.consents.change, sid, change, context)
    if not outcome.changed:
        raise RuntimeError(f"a change that moved nothing: {sid} {change}")
    return outcome


def closed_loop(
    container: Any,
    pids: list[str],
    changes: int,
    threads: int,
    start: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """``threads`` writers, each sending its next change once the last one was acknowledged
    (the API's and the page's worker threads). ``start``: called once warmed up, right before
    the measured run (the processes of one run start together)."""
    per_thread = changes // threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    context = Context(source="api")

    def writer(t: int, count: int, tag: str) -> None:
        mine = latencies[t]
        for i in range(count):
            sid, change = _change(i, pids, 50, f"{tag}-{t}")
            sent = time.perf_counter()
            outcome = container.consents.change(sid, change, context)
            mine.append(time.perf_counter() - sent)
            if not outcome.changed:
                raise RuntimeError(f"a change that moved nothing: {sid} {change}")

    warm = [threading.Thread(target=writer, args=(t, 5, "warm")) for t in range(threads)]
    for w in warm:
        w.start()
    for w in warm:
        w.join()
    for mine in latencies:
        mine.clear()
    meter = Meter(container)
    writer(0, 1, "warm-pid")
    if start is not None:
        start()
    meter.start()
    workers = [
        threading.Thread(target=writer, args=(t, per_thread, "closed")) for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    result = {"threads": threads, **meter.stop(per_thread * threads)}
    meter.close()
    result["acknowledgement"] = _percentiles([x for mine in latencies for x in mine])
    return result


def open_loop(container: Any, pids: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """Changes sent at a fixed rate whatever the acknowledgements do (as many clients would),
    from the event loop (the API's PUT fast path); latency from each change's planned send
    time to its acknowledgement, so a stall counts for every change it delays."""
    count = int(rate * seconds)
    context = Context(source="api")
    latencies: list[float] = []

    async def one(i: int, due: float, tag: str = "open") -> None:
        sid, change = _change(i, pids, 1000, tag)
        await _change_on_loop(container, sid, change, context)
        latencies.append(time.perf_counter() - due)

    async def send() -> None:
        await asyncio.gather(*(one(i, time.perf_counter(), "warm") for i in range(20)))  # warm up
        latencies.clear()
        start = time.perf_counter()
        tasks = []
        for i in range(count):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, due)))
        await asyncio.gather(*tasks)

    meter = Meter(container)
    container.consents.change("open-pid", [Change(pids[0], ChoiceState.GRANTED)], context)
    meter.start()
    asyncio.run(send())
    result = {"offered_per_second": rate, **meter.stop(count)}
    meter.close()
    result["acknowledgement"] = _percentiles(latencies)
    return result


def event_loop_closed(
    container: Any,
    pids: list[str],
    changes: int,
    clients: int,
    start: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """``clients`` clients on the event loop (the API's PUT fast path, as concurrent HTTP
    clients reach it), each sending its next change once the last one was acknowledged."""
    per_client = changes // clients
    latencies: list[float] = []
    context = Context(source="api")

    async def client(c: int, count: int, tag: str) -> None:
        for i in range(count):
            sid, change = _change(i, pids, 50, f"{tag}-{c}")
            sent = time.perf_counter()
            await _change_on_loop(container, sid, change, context)
            latencies.append(time.perf_counter() - sent)

    async def send(tag: str, count: int) -> None:
        await asyncio.gather(*(client(c, count, tag) for c in range(clients)))

    asyncio.run(send("loop-warm", 5))
    latencies.clear()
    meter = Meter(container)
    if start is not None:
        start()
    meter.start()
    asyncio.run(send("loop", per_client))
    result = {"clients": clients, **meter.stop(per_client * clients)}
    meter.close()
    result["acknowledgement"] = _percentiles(latencies)
    return result


def open_container(url: str) -> tuple[Any, list[str]]:
    """The services as the server builds them, and the permissions the changes move."""
    container = bootstrap(Settings(database_url=url, catalogue=CATALOGUE, demo=True))
    gc.collect()  # as the server does once built (consentry.asgi.settle_heap)
    gc.freeze()
    return container, [p.id for p in container.catalogue.permissions if p.toggleable][:8]


def _process(url: str, changes: int, clients: int, index: int, barrier: Any, out: Any) -> None:
    """One server-like process of ``closed_loop_processes``: its own container and group
    commit, its own subjects."""
    global RUN
    RUN = f"{RUN}-p{index}"
    container, pids = open_container(url)
    try:
        out.put(event_loop_closed(container, pids, changes, clients, barrier.wait))
    finally:
        container.close()


def closed_loop_processes(url: str, changes: int, clients: int, processes: int) -> dict[str, Any]:
    """``event_loop_closed`` in ``processes`` processes at once (as ``consentry serve --workers
    P``), ``clients`` clients and its share of the changes each; changes/s for all of them
    together (from the slowest one's time), CPU per change summed over them."""
    spawn = multiprocessing.get_context("spawn")
    barrier, out = spawn.Barrier(processes), spawn.Queue()
    each = changes // processes
    workers = [
        spawn.Process(target=_process, args=(url, each, clients, i, barrier, out))
        for i in range(processes)
    ]
    for w in workers:
        w.start()
    parts = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    done = sum(p["changes"] for p in parts)
    slowest = max(p["seconds"] for p in parts)
    result: dict[str, Any] = {
        "processes": processes,
        "clients_per_process": clients,
        "changes": done,
        "seconds": slowest,
        "changes_per_second": round(done / slowest, 1),
    }
    for name in ("process_cpu_ms_per_change", "database_backend_cpu_ms_per_change"):
        if all(name in p for p in parts):
            result[name] = round(sum(p[name] * p["changes"] for p in parts) / done, 3)
    result["changes_per_batch"] = round(
        sum(p.get("changes_per_batch", 0) for p in parts) / len(parts), 2
    )
    result["acknowledgement_p99_ms"] = max(p["acknowledgement"]["p99_ms"] for p in parts)
    result["load_average"] = Path("/proc/loadavg").read_text().split()[:3]
    return result
