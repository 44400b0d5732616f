"""The change feed and snapshots that SDK replicas follow: GET /v1/changes, GET /v1/snapshot.

A replica loads a snapshot (which names the cursor it is consistent with), then long-polls
``/v1/changes?after=<cursor>&wait=<seconds>``. Both need the ``decide`` scope: they carry every
subject's choices, which is what a decision point holds anyway.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from consentry.bootstrap import Container
from consentry.feed import reader
from consentry.http.deps import ContainerDep, Decider
from consentry.http.problems import Problem
from consentry.replica import wire

router = APIRouter(tags=["replication"])


MAX_WAIT = 30.0
POLL = 0.1  # how often a long poll looks at the database for other processes' writes
TICK = 0.01  # how often it looks for this process's own writes (no database query)
MAX_LAG = 100_000  # further behind than this, reloading a snapshot is faster
# A long poll's first look waits this long: a follower asks again as soon as it has an answer,
# so under load each answer then carries the changes of 10 ms (one read, one response) rather
# than the few of one round trip.
GATHER = 0.01


def _read(container: Container, after: str, limit: int) -> list[reader.FeedEntry]:
    try:
        return reader.read_changes(container.db, after, limit, max_lag=MAX_LAG)
    except reader.CursorGone as exc:
        raise Problem(
            410,
            f"{exc}: load GET /v1/snapshot and follow from its cursor",
            code="cursor_expired",
        ) from exc


@router.get("/v1/changes")
async def get_changes(
    _: Decider,
    container: ContainerDep,
    after: Annotated[str, Query(pattern=wire.CURSOR_PATTERN, description="Cursor")] = "0",
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description="Long-poll seconds")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """Changes after ``after``, in commit-safe order, as JSON lines. With ``wait``, holds the
    request until a change arrives or the time is up (then an empty body). The response's
    ``Consentry-Cursor`` header is the cursor to send next."""
    cursor = after
    deadline = time.monotonic() + wait
    replica = container.replica
    if wait > 0:
        await asyncio.sleep(GATHER)
    while True:
        writes = replica.writes
        changes = await run_in_threadpool(_read, container, cursor, limit)
        now = time.monotonic()
        if changes or now >= deadline:
            break
        next_query = min(deadline, now + POLL)
        while time.monotonic() < next_query and replica.writes == writes:
            await asyncio.sleep(TICK)
    last = changes[-1].cursor if changes else cursor
    body = "".join(wire.change_line(c.cursor, c.raw) + "\n" for c in changes)
    return Response(body, media_type=wire.NDJSON, headers={wire.CURSOR_HEADER: last})


def _snapshot_lines(container: Container, cursor: str) -> Iterator[str]:
    compiled = container.index.compiled
    with reader.snapshot(container.db) as snapshot:
        yield wire.header_line(compiled, cursor, snapshot.count()) + "\n"
        count = 0
        for record in snapshot.subjects():
            count += 1
            yield (
                wire.subject_line(
                    compiled,
                    record.subject,
                    record.seq,
                    record.jurisdiction,
                    record.choices,
                    record.ref,
                )
                + "\n"
            )
        yield wire.trailer_line(count) + "\n"


def _chunked(lines: Iterator[str], gzip: bool, size: int = 1 << 16) -> Iterator[bytes]:
    packer = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None
    buffer: list[str] = []
    held = 0
    for line in lines:
        buffer.append(line)
        held += len(line)
        if held >= size:
            data = "".join(buffer).encode()
            buffer, held = [], 0
            yield packer.compress(data) if packer else data
    data = "".join(buffer).encode()
    yield (packer.compress(data) + packer.flush()) if packer else data


@router.get("/v1/snapshot")
def get_snapshot(_: Decider, container: ContainerDep, request: Request) -> StreamingResponse:
    """Every subject's choices, streamed as JSON lines (gzip when accepted), consistent with
    the cursor in its first line: follow ``/v1/changes`` from there."""
    cursor = reader.settled_head(container.db)
    if cursor is None:
        raise Problem(503, "writers are still committing; retry", code="busy")
    gzip = "gzip" in request.headers.get("accept-encoding", "")
    headers = {wire.CURSOR_HEADER: cursor}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    return StreamingResponse(
        _chunked(_snapshot_lines(container, cursor), gzip),
        media_type=wire.NDJSON,
        headers=headers,
    )
