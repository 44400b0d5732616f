"""The fast paths' base: an API route's common case answered in pure ASGI.

A fast path sits in front of FastAPI (see ``app.py``) and answers, without FastAPI's
per-request machinery (routing, dependencies, pydantic models, thread hops), only the requests
whose answer it can be sure of; the route stays the reference. The contract every fast path
keeps, enforced here once:

- it looks at requests of its method only, on the path the app sees (after ``root_path``);
- :meth:`FastPath.ask` decides from the request head alone (path, headers, credential) whether
  to try; then the body is read as the app would read it (``limits.read_body``);
- the answer is 200 with the JSON bytes FastAPI would render for the route, labelled with the
  route the app would have matched (the metrics name requests by its template);
- anything else (a head it does not take, a body too long for here, an answer of None, an
  exception) continues to the route with the body it read replayed, so errors, problem bodies
  and database fallbacks are the route's own.

The rate limit, security headers, body limit and metrics middlewares sit outside and apply
alike. The fast paths themselves are ``api/fastpaths.py``; tests compare their bytes with the
routes' own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from consentry.bootstrap import Container
from consentry.http import access
from consentry.http.credentials import Principal, raw_header, remembered_key
from consentry.http.limits import read_body, replay

JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})
_HEADERS = [(b"content-type", b"application/json")]

# Makes the response body from the request body; None: the route answers.
Answer = Callable[[bytes], Awaitable[bytes | None]]


def name_ok(value: object, longest: int) -> bool:
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


def json_content(scope: Scope, *, required: bool) -> bool:
    """The body is announced as JSON (or, when not ``required``, not announced at all)."""
    content_type = raw_header(scope, b"content-type")
    if content_type is None:
        return not required
    return content_type.lower() in JSON_TYPES


class FastPath:
    """One route's fast path. Subclasses name the ``method`` and implement :meth:`ask`."""

    method: ClassVar[str]

    def __init__(self, app: ASGIApp, container: Container, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self.container = container
        self._routes: dict[str, Any] = {}
        # Requests answered here (the rest went to the routes): for tests and debugging.
        self.answered = 0

    async def ask(self, scope: Scope, path: str) -> tuple[str, Answer] | None:
        """For a request this path may answer: the route's template and how to answer its
        body. None: the route answers."""
        raise NotImplementedError

    async def service_key(self, token: str) -> Principal | None:
        """A verified service key, through the key cache the routes use; None when unknown,
        revoked or not verifiable now (the database is away: the route answers, 503)."""
        try:
            return await remembered_key(self.container, token)
        except Exception:
            return None

    def route(self, template: str) -> Any:
        """The route the app would have matched (the metrics label requests by its path)."""
        route = self._routes.get(template)
        if route is None:
            found = (
                r
                for r, p in access.api_routes(self.api)
                if p == template and self.method in (r.methods or ())
            )
            route = self._routes[template] = next(found, None)
        return route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != self.method:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        asked = await self.ask(scope, path)
        if asked is None:
            await self.app(scope, receive, send)
            return
        template, answer = asked
        messages, payload = await read_body(receive)
        body: bytes | None = None
        if payload is not None:  # None: too long for here, the app reads the rest
            try:
                body = await answer(payload)
            except Exception:
                body = None
        if body is None:
            await self.app(scope, replay(messages, receive), send)
            return
        scope["route"] = self.route(template)
        headers = [(b"content-length", str(len(body)).encode()), *_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
