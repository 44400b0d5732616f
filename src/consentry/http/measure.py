"""Pure ASGI middleware: latency and request metrics per route (the body limit is
``http/limits.py``, outside the rate limits).

Each answer is counted, and timed up to its response start (a streamed answer, such
as a long poll on the change feed, counts once its headers leave), under the route's template,
not the raw path, so subject ids never become metric labels.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.metrics import Metrics


def route_name(scope: Scope) -> str:
    return str(getattr(scope.get("route"), "path", "unmatched"))


class Measure:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._latency: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, str, int], Any] = {}

    def _record(self, method: str, route: str, status: int, seconds: float) -> None:
        latency = self._latency.get((method, route))
        if latency is None:
            latency = self._latency[method, route] = self.metrics.latency.labels(method, route)
        latency.observe(seconds)
        count = self._requests.get((method, route, status))
        if count is None:
            labels = self.metrics.requests.labels(method, route, str(status))
            count = self._requests[method, route, status] = labels
        count.inc()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = time.perf_counter() - started
                self._record(scope["method"], route_name(scope), message["status"], elapsed)
            await send(message)

        await self.app(scope, receive, timed_send)
