"""Access reports: ``Consentry.report_use`` queues, a background thread sends batches.

A report says the data was used (``outcome="used"``, the default) or that the service asked,
was told no and refrained (``outcome="refrained"``: the customer's page counts those apart,
"we did not use ...", and they are never violations).

The caller never waits on the network. Reports go to ``POST /v1/uses`` (the key needs the
``uses:write`` scope) in batches of up to ``batch_size``, at the latest ``flush_every`` seconds
after the first one of a batch was queued. A network error, a 429 or a 5xx keeps the batch and
retries it with exponential backoff (0.1 s to ``max_backoff``, with jitter); any other error
status (a bad report, a key without the scope) drops the batch and counts it as ``rejected``.

The queue holds at most ``max_queue`` reports. When it is full, ``report_use`` drops the
report it was given (never blocks, never evicts older ones) and counts it as ``dropped``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

log = logging.getLogger("consentry.sdk")

DEFAULT_BATCH = 500
DEFAULT_FLUSH_EVERY = 0.5
DEFAULT_MAX_QUEUE = 100_000
MAX_BATCH = 1000  # what POST /v1/uses accepts in one request

Outcome = Literal["used", "refrained"]


@dataclass
class UseStats:
    """What happened to the reports given to ``report_use`` (``Consentry.stats``)."""

    reported: int = 0  # accepted into the queue
    sent: int = 0  # acknowledged by the server
    dropped: int = 0  # refused because the queue was full, or still queued at close()
    rejected: int = 0  # in a batch the server refused (4xx other than 429)
    retries: int = 0  # batches sent again after a network error, 429 or 5xx
    violations: int = 0  # reports the server flagged as not allowed at the time of use
    queued: int = 0  # waiting now


def _names(categories: Sequence[str] | str) -> list[str]:
    names = [categories] if isinstance(categories, str) else [str(c) for c in categories]
    if not names:
        raise ValueError("categories must name at least one data category")
    return names


@dataclass(eq=False)
class UseReporter:
    http: httpx.Client
    _: KW_ONLY
    batch_size: int = DEFAULT_BATCH
    flush_every: float = DEFAULT_FLUSH_EVERY
    max_queue: int = DEFAULT_MAX_QUEUE
    max_backoff: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        if self.flush_every <= 0 or self.max_queue < 1:
            raise ValueError("flush_every and max_queue must be positive")
        self.stats = UseStats()
        self._queue: deque[dict[str, Any]] = deque()
        self._oldest: float | None = None  # when the oldest waiting report was queued
        self._in_flight = 0
        self._flushing = 0  # callers of flush() waiting: send now, do not wait for a full batch
        self._rejected_seen = 0  # stats.rejected when a flush() last answered
        self._cond = threading.Condition()
        self._closing = False
        self._closed = threading.Event()  # wakes a retry's backoff wait at close()
        self._thread: threading.Thread | None = None

    # -- the caller's side ----------------------------------------------------------------------
    def report(
        self,
        subject: str,
        purpose: str,
        categories: Sequence[str] | str,
        recipient: str | None,
        at: datetime | None,
        outcome: Outcome = "used",
    ) -> bool:
        """Queue one report; False when it was dropped (queue full, or closed)."""
        if outcome not in ("used", "refrained"):
            raise ValueError(f'outcome must be "used" or "refrained", not {outcome!r}')
        if at is None:
            at = datetime.now(UTC)
        elif at.tzinfo is None:
            raise ValueError("at needs a time zone (e.g. datetime.now(UTC))")
        item = {
            "subject": subject,
            "purpose": purpose,
            "categories": _names(categories),
            "recipient": recipient,
            "used_at": at.isoformat(),
        }
        if outcome != "used":  # a plain use is sent as before, to servers of any version
            item["outcome"] = outcome
        with self._cond:
            if self._closing or len(self._queue) >= self.max_queue:
                self.stats.dropped += 1
                if self.stats.dropped == 1 or self.stats.dropped % 10_000 == 0:
                    log.warning("consentry use reports dropped: %d so far", self.stats.dropped)
                return False
            if not self._queue:
                self._oldest = time.monotonic()
            self._queue.append(item)
            self.stats.reported += 1
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()
            self._start_unlocked()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now. True once the queue is empty, nothing is in flight and
        the server accepted every report sent since the previous flush; False if ``timeout``
        seconds passed first, or if the server refused some of them (``stats.rejected`` says
        how many: a bad report, or a key without the ``uses:write`` scope)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._queue or self._in_flight:
                    if self._thread is None or not self._thread.is_alive():
                        self._start_unlocked()
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(left if left is not None else 1.0)
                refused = self.stats.rejected > self._rejected_seen
                self._rejected_seen = self.stats.rejected
                return not refused
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 5.0) -> None:
        """Flush (up to ``timeout`` seconds), then stop; what is left counts as dropped."""
        self.flush(timeout)
        with self._cond:
            self._closing = True
            self._closed.set()
            self.stats.dropped += len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def snapshot(self) -> UseStats:
        with self._cond:
            stats = UseStats(**vars(self.stats))
            stats.queued = len(self._queue) + self._in_flight
            return stats

    # -- the thread --------------------------------------------------------------------------
    def _start_unlocked(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            if self._closing:
                return
            self._thread = threading.Thread(
                target=self._run, name="consentry-sdk-uses", daemon=True
            )
            self._thread.start()

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """Wait until a batch is due; None once closing with nothing left."""
        with self._cond:
            while True:
                if self._queue:
                    assert self._oldest is not None
                    due = self._oldest + self.flush_every
                    full = len(self._queue) >= self.batch_size
                    if full or self._flushing or self._closing or time.monotonic() >= due:
                        count = min(self.batch_size, len(self._queue))
                        batch = [self._queue.popleft() for _ in range(count)]
                        self._oldest = time.monotonic() if self._queue else None
                        self._in_flight = len(batch)
                        return batch
                    self._cond.wait(max(0.0, due - time.monotonic()))
                elif self._closing:
                    return None
                else:
                    self._cond.wait(1.0)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._send(batch)
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        backoff = 0.1
        while True:
            try:
                response = self.http.post("/v1/uses", json={"uses": batch})
                status = response.status_code
            except httpx.HTTPError as exc:
                status, detail = 0, repr(exc)
            else:
                detail = response.text[:200]
            if 200 <= status < 300:
                body = response.json()
                with self._cond:
                    self.stats.sent += len(batch)
                    self.stats.violations += int(body.get("violations", 0))
                return
            if status and status != 429 and status < 500:
                with self._cond:
                    self.stats.rejected += len(batch)
                log.error("consentry refused %d use reports: %s %s", len(batch), status, detail)
                return
            with self._cond:
                if self._closing:
                    self.stats.dropped += len(batch)
                    return
                self.stats.retries += 1
            log.warning("sending use reports failed (%s %s); retrying", status, detail)
            self._closed.wait(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self.max_backoff)
