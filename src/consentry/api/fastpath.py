"""The decision endpoints' fast path: POST /v1/decisions and /v1/decisions/batch in pure ASGI.

The routes in ``api/routes/decisions.py`` are the reference: they define the request and
response schemas (and so the OpenAPI document), authentication, limits and every error. This
middleware answers, without FastAPI's per-request machinery (routing, dependencies, pydantic
models), only the requests whose answer it can be sure of:

- a JSON body that :func:`valid_check` accepts for every check (a strict subset of what
  ``DecisionIn`` accepts, with the same values), at most ``max_batch`` checks;
- a service key with the ``decide`` scope, verified as the route verifies it and remembered
  in the same key cache (``feed.keycache``);
- decisions the in-process replica can give (``ServerReplica.answer``).

Anything else (no or unknown credential, a subject token, a missing scope, invalid JSON or
fields, too many checks, device data, a replica not ready) continues to the route with the
body it read, so errors, problem bodies and database fallbacks are the route's own. The rate
limit, security headers, body limit and metrics middlewares sit outside and apply alike (see
``app.ConsentryAPI``). The
bytes answered are the ones FastAPI would render for ``DecisionOut``/``DecisionBatchOut``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.api import access
from consentry.api.deps import Principal, verify_key
from consentry.api.measure import MAX_BODY
from consentry.bootstrap import Container
from consentry.domain.rules import Decision
from consentry.feed.server import DecisionTuple
from consentry.scopes import Scope as KeyScope
from consentry.services.keys import PREFIX

SINGLE = "/v1/decisions"
BATCH = "/v1/decisions/batch"
_FIELDS = frozenset({"subject", "purpose", "categories", "recipient", "device"})
_JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})
_HEADERS = [(b"content-type", b"application/json")]
_MAX_RENDERED = 10_000


def _name(value: object, longest: int) -> bool:
    """A str of 1..longest characters that pydantic accepts as is (no lone surrogates)."""
    if type(value) is not str or not 0 < len(value) <= longest:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def valid_check(item: object) -> DecisionTuple | None:
    """The check as (subject, purpose, categories, recipient) when ``DecisionIn`` surely
    accepts it and it asks nothing about a device; else None (the route answers)."""
    if type(item) is not dict or not item.keys() <= _FIELDS or item.get("device") is not None:
        return None
    subject = item.get("subject")
    purpose = item.get("purpose")
    categories = item.get("categories")
    recipient = item.get("recipient")
    if not (_name(subject, 200) and _name(purpose, 100)):
        return None
    if type(categories) is not list or not 0 < len(categories) <= 50:
        return None
    for category in categories:
        if not _name(category, 100):
            return None
    if recipient is not None and not _name(recipient, 100):
        return None
    return subject, purpose, tuple(categories), recipient  # type: ignore[return-value]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def read_small_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request messages read and the body they carry; None for the body when it is longer
    than MAX_BODY (the app then answers, reading the rest after a replay of these messages)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    else:
        return messages, None
    return messages, b"".join(chunks)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives the messages already read, then the real ones."""
    pending = list(messages)

    async def again() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return again


async def answer_or_pass(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    answer: Callable[[bytes], Awaitable[bytes | None]],
    route: Callable[[], Any],
) -> None:
    """Read the request's (small) body and answer 200 with the JSON bytes ``answer`` makes of
    it, labelled with ``route()`` for the metrics; or, when the body is too long for here or
    ``answer`` gives None or raises, pass the request on to ``app`` with the body replayed:
    the route runs the same steps and answers, errors included."""
    messages, payload = await read_small_body(receive)
    body: bytes | None = None
    if payload is not None:  # None: too long for here, the app reads the rest
        try:
            body = await answer(payload)
        except Exception:
            body = None
    if body is None:
        await app(scope, _replay(messages, receive), send)
        return
    scope["route"] = route()
    headers = [(b"content-length", str(len(body)).encode()), *_HEADERS]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class DecisionFastPath:
    def __init__(self, app: ASGIApp, container: Container, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self.container = container
        self.replica = container.replica
        self.max_batch = container.settings.max_batch
        self.consents = container.consents  # its clock is read per request, as the routes do
        self._counters: dict[tuple[bool, str], Any] = {}
        self._rendered: dict[Decision, bytes] = {}
        self._routes: dict[str, Any] = {}
        # Decisions answered here (the rest went to the routes): for tests and debugging.
        self.answered = 0

    # -- pieces ------------------------------------------------------------------------------
    async def _authorised(self, scope: Scope) -> bool:
        """A service key with the ``decide`` scope, from the key cache, else verified as the
        route does (then remembered, as the route would). Anything else: False."""
        raw = _header(scope, b"authorization")
        if raw is None:
            return False
        scheme, _, token = raw.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(PREFIX):
            return False
        cache = self.replica.keys
        found = cache.get(token)
        if not isinstance(found, Principal):
            try:
                found = await verify_key(self.container, token)
            except Exception:  # the database is away: the route answers (503)
                return False
            if found is None:
                return False
            cache.put(token, found)
        return found.has(KeyScope.DECIDE)

    def _render(self, decision: Decision) -> bytes:
        found = self._rendered.get(decision)
        if found is None:
            body = {
                "allowed": decision.allowed,
                "reason": decision.reason.value,
                "permission": decision.permission,
            }
            found = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            if len(self._rendered) >= _MAX_RENDERED:
                self._rendered.clear()
            self._rendered[decision] = found
        return found

    def _count(self, tally: list[tuple[Decision, int]]) -> None:
        for decision, n in tally:
            self.answered += n
            label = (decision.allowed, decision.reason.value)
            counter = self._counters.get(label)
            if counter is None:
                metric = self.container.metrics.decisions
                counter = self._counters[label] = metric.labels(str(label[0]).lower(), label[1])
            counter.inc(n)

    def _decide(self, checks: list[DecisionTuple]) -> list[Decision] | None:
        replica = self.replica
        if not replica.ready():
            return None
        return replica.answer_many(checks, self.consents.clock().timestamp())

    def _checks(self, items: list[Any]) -> list[DecisionTuple] | None:
        """Every item as a tuple (see ``valid_check``), or None. The common case (ASCII names,
        one category, no device) is tested inline; anything else goes through ``valid_check``."""
        fields = _FIELDS
        out: list[DecisionTuple] = []
        append = out.append
        for item in items:
            if type(item) is dict and item.keys() <= fields:
                subject = item.get("subject")
                purpose = item.get("purpose")
                categories = item.get("categories")
                recipient = item.get("recipient")
                if (
                    type(subject) is str
                    and type(purpose) is str
                    and type(categories) is list
                    and len(categories) == 1
                    and type(category := categories[0]) is str
                    and type(recipient) is str
                    and "device" not in item
                    and 0 < len(subject) <= 200
                    and 0 < len(purpose) <= 100
                    and 0 < len(category) <= 100
                    and 0 < len(recipient) <= 100
                    and subject.isascii()
                    and purpose.isascii()
                    and category.isascii()
                    and recipient.isascii()
                ):
                    append((subject, purpose, (category,), recipient))
                    continue
            check = valid_check(item)
            if check is None:
                return None
            append(check)
        return out

    def _body(self, path: str, payload: bytes) -> bytes | None:
        """The response body, or None when the route must answer."""
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        if path == SINGLE:
            check = valid_check(data)
            if check is None:
                return None
            decisions = self._decide([check])
            if decisions is None:
                return None
            self._count([(decisions[0], 1)])
            return self._render(decisions[0])
        if type(data) is not dict or data.keys() != {"checks"}:
            return None
        items = data["checks"]
        if type(items) is not list or not 0 < len(items) <= self.max_batch:
            return None
        checks = self._checks(items)
        if checks is None:
            return None
        decisions = self._decide(checks)
        if decisions is None:
            return None
        # Decisions are mostly shared objects (the compiled tables'): count and render each
        # distinct one once, by identity (safe while ``decisions`` holds them).
        ids = list(map(id, decisions))
        by_id = dict(zip(ids, decisions, strict=True))
        tally = Counter(ids)
        self._count([(by_id[key], n) for key, n in tally.items()])
        rendered = {key: self._render(by_id[key]) for key in tally}
        return b'{"results":[' + b",".join(map(rendered.__getitem__, ids)) + b"]}"

    def _route(self, path: str) -> Any:
        """The route the app would have matched (the metrics label requests by its path)."""
        route = self._routes.get(path)
        if route is None:
            found = (
                r
                for r, p in access.api_routes(self.api)
                if p == path and "POST" in (r.methods or ())
            )
            route = self._routes[path] = next(found, None)
        return route

    # -- ASGI --------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path not in (SINGLE, BATCH) or not await self._authorised(scope):
            await self.app(scope, receive, send)
            return
        content_type = _header(scope, b"content-type")
        if content_type is not None and content_type.lower() not in _JSON_TYPES:
            await self.app(scope, receive, send)
            return

        async def answer(payload: bytes) -> bytes | None:
            return self._body(path, payload) if payload else None

        await answer_or_pass(self.app, scope, receive, send, answer, lambda: self._route(path))
