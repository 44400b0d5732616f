"""Waiting for a page's network to fall quiet, counted from the browser context's own request
events.

Playwright's ``networkidle`` load state is not used: it is tracked per frame, and an iframe a
page adds or removes after its load (a partner's video player let in by a choice) can leave
the main frame's state cleared for good, so a wait for it times out with nothing in flight.
Here every request the context sends counts until it finished or failed, in any frame.
"""

from __future__ import annotations

import time
from typing import Any

QUIET_MS = 500  # no request in flight for this long: the page has settled


class NetworkQuiet:
    """Requests in flight in a Playwright context (sync API), and a wait for none."""

    def __init__(self, context: Any) -> None:
        self._in_flight: set[int] = set()
        self._last_change = time.monotonic()
        context.on("request", self._started)
        context.on("requestfinished", self._ended)
        context.on("requestfailed", self._ended)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def _started(self, request: Any) -> None:
        self._in_flight.add(id(request))
        self._last_change = time.monotonic()

    def _ended(self, request: Any) -> None:
        self._in_flight.discard(id(request))
        self._last_change = time.monotonic()

    def wait(self, page: Any, timeout_ms: int, quiet_ms: int = QUIET_MS) -> bool:
        """Let ``page`` run until no request has been in flight for ``quiet_ms``; False when
        ``timeout_ms`` passed first (a page that keeps polling). The events are delivered
        while Playwright waits, so the wait is Playwright's own (never ``time.sleep``)."""
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            now = time.monotonic()
            if not self._in_flight and now - self._last_change >= quiet_ms / 1000:
                return True
            if now >= deadline:
                return False
            page.wait_for_timeout(50)
