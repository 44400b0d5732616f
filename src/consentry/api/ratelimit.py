"""Rate limiting: token buckets per credential and per subject, in this process.

Two buckets are charged for each request: the caller's (its ``Authorization`` header, else
its page session cookie, else its address) and, on ``/v1/subjects/{sid}/...``, that subject's.
Either one empty answers 429 ``application/problem+json`` with ``Retry-After``. The per-key
limit stops one leaked or runaway credential from starving everyone; the per-subject limit
stops hammering (or enumerating the history of) one customer from many keys.

Settings (0 turns a limit off): ``rate_limit_per_key`` / ``rate_limit_key_burst`` and
``rate_limit_per_subject`` / ``rate_limit_subject_burst``; production values are in
docs/security.md. Buckets live in this process: with N workers a caller gets up to N times
the limit, so a gateway in front should carry the global limit if one is needed.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from consentry.api.problems import problem_response
from consentry.config import Settings

MAX_BUCKETS = 100_000  # least recently used buckets beyond this are dropped (memory stays flat)
EXEMPT = frozenset({"/healthz"})  # load balancers' health checks are never limited
_SUBJECT_PATH = re.compile(r"^/v1/subjects/([^/]+)")
_SESSION_COOKIE = re.compile(r"(?:^|;\s*)consentry_session=([^;]+)")


class TokenBuckets:
    """Buckets of ``burst`` tokens refilled at ``rate`` per second, one per key."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may make a request (0: now)."""
        tokens = self._level(key, self.clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, key: str) -> None:
        now = self.clock()
        self._buckets[key] = (self._level(key, now) - 1, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def caller_key(scope: Scope) -> str:
    """A stable, non-secret name for the caller (the credential itself is never kept)."""
    auth = _header(scope, b"authorization")
    if not auth:
        cookie = _SESSION_COOKIE.search(_header(scope, b"cookie") or "")
        auth = f"session:{cookie.group(1)}" if cookie else None
    if auth:
        return "cred:" + hashlib.sha256(auth.encode()).hexdigest()[:32]
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}"


class RateLimit:
    """ASGI middleware charging the caller's and the subject's bucket for each request."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.keys = (
            TokenBuckets(settings.rate_limit_per_key, settings.rate_limit_key_burst)
            if settings.rate_limit_per_key > 0
            else None
        )
        self.subjects = (
            TokenBuckets(settings.rate_limit_per_subject, settings.rate_limit_subject_burst)
            if settings.rate_limit_per_subject > 0
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        charged: list[tuple[TokenBuckets, str, str]] = []
        if self.keys is not None:
            charged.append((self.keys, caller_key(scope), "this credential"))
        match = _SUBJECT_PATH.match(scope["path"])
        if self.subjects is not None and match:
            charged.append((self.subjects, match.group(1), "this subject"))
        for buckets, key, who in charged:
            wait = buckets.wait(key)
            if wait > 0:
                retry = str(max(1, math.ceil(wait)))
                response = problem_response(
                    429,
                    f"too many requests for {who}; retry in {retry} s",
                    code="rate_limited",
                    headers={"Retry-After": retry},
                )
                await response(scope, receive, send)
                return
        for buckets, key, _ in charged:
            buckets.take(key)
        await self.app(scope, receive, send)


def wrap(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` behind the rate limits (itself when both are off)."""
    if settings.rate_limit_per_key > 0 or settings.rate_limit_per_subject > 0:
        return RateLimit(app, settings)
    return app
