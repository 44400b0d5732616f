"""Rate limiting: token buckets per caller and per subject, in this process.

The caller's bucket is charged for each request: a verified service key's, subject token's or
page session's own bucket, else (no credential, or one that does not verify) the caller's
address. On ``/v1/subjects/{sid}/...`` a verified credential other than that subject's own also
charges the subject's bucket. Either one empty answers 429 ``application/problem+json`` with
``Retry-After``. The per-caller limit stops one leaked or runaway credential, or a flood of bad
ones, from starving everyone; the per-subject limit stops hammering (or enumerating the history
of) one customer from many keys. Neither anonymous nor badly authenticated traffic ever drains
a subject's bucket, and a customer's own requests are charged to their own bucket only: a
withdrawal is never refused because of someone else's traffic.

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
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from consentry.bootstrap import Container
from consentry.config import Settings
from consentry.http.credentials import bearer, header_text, is_service_key, remembered_key
from consentry.http.problems import problem_response

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


class SessionSubject(Protocol):
    @property
    def subject(self) -> str: ...


class Sessions(Protocol):
    """The page's session cookie reader (``web.session.Signer``): a valid cookie's session."""

    def session(self, cookie: str | None) -> SessionSubject | None: ...


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}"


class Callers:
    """Who a request comes from, for the buckets: a verified credential names its own bucket;
    anything else (none, a malformed, unknown, revoked, expired or forged one) is charged to
    the caller's address, so rotating bad credentials buys no fresh bucket."""

    def __init__(self, container: Container, signer: Sessions) -> None:
        self.container = container
        self.signer = signer

    async def _service_key(self, token: str) -> bool:
        # Through the key cache, as the decision endpoints (which read it) would.
        try:
            return await remembered_key(self.container, token) is not None
        except Exception:  # the database is away: the route answers (503)
            return False

    async def resolve(self, scope: Scope) -> tuple[str, str | None]:
        """(bucket key, the subject the caller is when it is a subject's own credential)."""
        auth = header_text(scope, b"authorization")
        if auth:
            token = bearer(auth)
            if token is not None:
                if is_service_key(token):
                    if await self._service_key(token):
                        return "key:" + _digest(token), None
                else:
                    subject = self.container.tokens.verify(token)
                    if subject is not None:
                        return "subject:" + _digest(subject), subject
            return _address(scope), None
        cookie = _SESSION_COOKIE.search(header_text(scope, b"cookie") or "")
        if cookie:
            session = self.signer.session(cookie.group(1))
            if session is not None:
                return "subject:" + _digest(session.subject), session.subject
        return _address(scope), None


class RateLimit:
    """ASGI middleware charging the caller's bucket for each request and, when a verified
    credential other than the subject's own asks about a subject, that subject's bucket."""

    def __init__(self, app: ASGIApp, settings: Settings, callers: Callers) -> None:
        self.app = app
        self.callers = callers
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
        caller, own_subject = await self.callers.resolve(scope)
        charged: list[tuple[TokenBuckets, str, str]] = []
        if self.keys is not None:
            who = "this address" if caller.startswith("addr:") else "this credential"
            charged.append((self.keys, caller, who))
        match = _SUBJECT_PATH.match(scope["path"])
        if (
            self.subjects is not None
            and match
            and not caller.startswith("addr:")  # unverified callers never drain a subject
            and own_subject != match.group(1)  # a customer's own requests: their bucket only
        ):
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


def wrap(app: ASGIApp, container: Container, signer: Sessions) -> ASGIApp:
    """``app`` behind the rate limits (itself when both are off)."""
    settings = container.settings
    if settings.rate_limit_per_key > 0 or settings.rate_limit_per_subject > 0:
        return RateLimit(app, settings, Callers(container, signer))
    return app
