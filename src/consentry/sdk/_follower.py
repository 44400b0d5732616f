"""Keeping a replica current: load a snapshot, then long-poll the change feed from its cursor.

The follower runs in one daemon thread. Any failure (network, server error) is retried with
backoff; meanwhile the replica keeps answering from what it holds until its staleness bound
passes, and then fails closed. A 410 from the feed, a gap in a subject's events, or the
periodic resync reload the whole snapshot into a new replica, swapped in when complete.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from consentry.domain.catalogue import Catalogue
from consentry.domain.messages import MalformedMessage, decode
from consentry.replica import wire
from consentry.replica.core import Replica
from consentry.sdk._errors import (
    ConsentryError,
    CursorExpired,
    ProtocolError,
    TransportError,
    error_for,
)

log = logging.getLogger("consentry.sdk")


def _check(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    problem: Any
    try:
        response.read()
        problem = response.json()
    except (ValueError, httpx.HTTPError):
        problem = None
    if not isinstance(problem, dict):
        problem = {"detail": response.text[:200] if response.is_stream_consumed else ""}
    raise error_for(response.status_code, problem)


def _lines(response: httpx.Response) -> Iterator[Any]:
    for line in response.iter_lines():
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise ProtocolError(f"not a JSON line: {line[:80]!r}") from exc


@dataclass
class FollowStats:
    """What a follower did since the client started (``Consentry.stats``)."""

    applied: int = 0  # changes that moved the replica (each one exactly once)
    skipped: int = 0  # changes the replica already held (from the snapshot, or sent again)
    duplicates: int = 0  # messages dropped by event id (JetStream redeliveries)
    gaps: int = 0  # a subject's event arrived before one it follows: snapshot reloaded
    reloads: int = 0  # snapshot reloads after the first load
    reconnects: int = 0  # NATS connections opened again after a drop
    undecodable: int = 0  # messages that were not a JSON object (skipped)


def apply_change(replica: Replica, change: Mapping[str, Any], stats: FollowStats) -> bool:
    """Apply one change message (the caller holds ``replica.lock``), counting whether it moved
    the replica; False on a gap in the subject's events."""
    try:
        message = decode(change)
    except MalformedMessage as exc:
        raise ProtocolError(f"bad change message: {str(change)[:80]}") from exc
    subject = message.subject
    before = replica.seq(subject) if subject is not None and message.seq is not None else None
    if not replica.apply(message):
        return False
    if before is not None and replica.seq(str(subject)) == before:
        stats.skipped += 1
    else:
        stats.applied += 1
    return True


def load_snapshot(http: httpx.Client, stale_after: float) -> tuple[Replica, str]:
    """A replica filled from GET /v1/snapshot, and the cursor it is consistent with."""
    try:
        with http.stream("GET", "/v1/snapshot") as response:
            _check(response)
            lines = _lines(response)
            header = next(lines, None)
            if not isinstance(header, dict) or header.get("format") != wire.SNAPSHOT_FORMAT:
                raise ProtocolError(f"not a consentry snapshot: {str(header)[:80]}")
            try:
                catalogue = Catalogue.model_validate(header["catalogue"])
                cursor = str(header["cursor"])
                wire.parse_cursor(cursor)
            except (KeyError, ValueError, ValidationError) as exc:
                raise ProtocolError(f"bad snapshot header: {exc}") from exc
            replica = Replica(catalogue, capacity=int(header.get("subjects", 0)))
            count = 0
            with replica.lock:
                for line in lines:
                    if isinstance(line, dict):
                        if line.get("end") and line.get("subjects") == count:
                            break
                        raise ProtocolError(f"bad snapshot trailer: {line}")
                    try:
                        replica.load_masks(*wire.parse_subject(line))
                    except (TypeError, ValueError) as exc:
                        raise ProtocolError(f"bad snapshot line: {str(line)[:80]}") from exc
                    count += 1
                else:
                    raise ProtocolError("snapshot ended before its trailer (truncated)")
    except httpx.HTTPError as exc:
        raise TransportError(f"GET /v1/snapshot: {exc}") from exc
    replica.fresh_until = time.monotonic() + stale_after
    return replica, cursor


@dataclass(eq=False)
class Follower:
    http: httpx.Client
    replica: Replica
    cursor: str
    _: KW_ONLY
    stale_after: float
    poll_wait: float
    resync_every: float | None
    on_replica: Callable[[Replica], None]

    def __post_init__(self) -> None:
        self.last_error: ConsentryError | None = None
        self.stats = FollowStats()
        self._loaded_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consentry-sdk", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.poll_wait + 10)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                due = self.resync_every is not None and (
                    time.monotonic() - self._loaded_at >= self.resync_every
                )
                if due:
                    self._reload()
                else:
                    self.poll()
                self.last_error = None
                backoff = 0.1
            except CursorExpired as exc:
                log.warning("consentry replica fell behind (%s); reloading the snapshot", exc)
                self._reload_or_wait(backoff)
            except ConsentryError as exc:
                self.last_error = exc
                log.warning("consentry replica: %s; retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 5.0)

    def _reload_or_wait(self, backoff: float) -> None:
        try:
            self._reload()
        except ConsentryError as exc:
            self.last_error = exc
            self._stop.wait(backoff)

    def _reload(self) -> None:
        replica, cursor = load_snapshot(self.http, self.stale_after)
        self.replica, self.cursor = replica, cursor
        self._loaded_at = time.monotonic()
        self.stats.reloads += 1
        self.on_replica(replica)

    def poll(self) -> int:
        """One long poll of the change feed; returns how many changes it applied."""
        params = {"after": self.cursor, "wait": str(self.poll_wait)}
        try:
            response = self.http.get(
                "/v1/changes", params=params, timeout=self.poll_wait + self.stale_after
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"GET /v1/changes: {exc}") from exc
        _check(response)
        replica = self.replica
        applied = 0
        with replica.lock:
            for line in _lines(response):
                try:
                    change, cursor = line["change"], str(line["cursor"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise ProtocolError(f"bad change line: {str(line)[:80]}") from exc
                if not apply_change(replica, change, self.stats):
                    self.stats.gaps += 1
                    # Events of one subject arrive in order, so this means a lost event:
                    # start again from a snapshot rather than answer from a wrong state.
                    raise CursorExpired(409, {"detail": f"gap in events at cursor {cursor}"})
                self.cursor = cursor
                applied += 1
        header = response.headers.get(wire.CURSOR_HEADER)
        if header is not None:
            self.cursor = header
        # A successful answer is contact with the server: the view is fresh again.
        replica.fresh_until = time.monotonic() + self.stale_after
        return applied
