"""The fast path of ``PUT /v1/subjects/{sid}/permissions/{pid}``, in pure ASGI.

The route in ``api/routes/subjects.py`` is the reference: it defines the request and response
schemas (and so the OpenAPI document), authentication, the Global Privacy Control dependency,
idempotency and every error. This middleware answers, without FastAPI's per-request machinery
(routing, dependencies, pydantic request models, two thread hops), only the requests whose
answer it can be sure of:

- a JSON body that :func:`plain_change` accepts: ``state``, and optionally ``notice_version``,
  ``locale`` and empty ``options`` (a strict subset of what ``PermissionIn`` accepts);
- no ``Idempotency-Key`` and no ``Sec-GPC`` header (the route handles both);
- a service key with the ``subjects:write`` (or ``admin``) scope, checked by the change's own
  read (no statement of its own on PostgreSQL; a revoked key is refused at once, as on the
  route), or that subject's own token;
- a change the service accepts (an unknown, non-toggleable or outdated permission raises).

On PostgreSQL the change is written from the event loop (``ConsentService.change_on_loop``:
its read and its one write statement on an async connection); on SQLite, in a worker thread.
Anything else continues to the route with the body it read, so errors, problem bodies and
retries are the route's own. The rate limit, security headers, body limit and metrics
middlewares sit outside and apply alike (see ``app.ConsentryAPI``). The bytes answered are
the ones FastAPI renders for ``PermissionChangeOut`` (the route's own ``change_out``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Receive, Scope, Send

from consentry.api import access
from consentry.api.deps import SUBJECT_ID_PATTERN
from consentry.api.fastpath import _header, _name, answer_or_pass
from consentry.api.routes.subjects import change_out
from consentry.api.schemas import PermissionChangeOut
from consentry.bootstrap import Container
from consentry.domain.planning import Change, ChangeOutcome, Context
from consentry.domain.state import ChoiceState
from consentry.scopes import Scope as KeyScope
from consentry.services.keys import PREFIX, KeyCheck, key_check

ROUTE = "/v1/subjects/{sid}/permissions/{pid}"
_PATH = re.compile(r"/v1/subjects/([^/]+)/permissions/([^/]{1,100})")
_SUBJECT = re.compile(SUBJECT_ID_PATTERN.removeprefix("^").removesuffix("$"))
_FIELDS = frozenset({"state", "options", "notice_version", "locale"})
_STATES = {"granted": ChoiceState.GRANTED, "denied": ChoiceState.DENIED}
_JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})
_OUT = TypeAdapter(PermissionChangeOut)
# Changes run at once by this path, each in a thread holding a pooled connection: fewer than
# the pool keeps (``storage.database.POOL_SIZE``), so no connection is opened past it and closed
# again. More would not go faster on a few cores; the others wait here, not in a thread.
WRITERS = 16


def plain_change(data: object) -> tuple[ChoiceState, str | None, str | None] | None:
    """(state, notice_version, locale) when ``PermissionIn`` surely accepts the body and it
    asks for nothing but a plain grant or refusal; else None (the route answers)."""
    if type(data) is not dict or not data.keys() <= _FIELDS:
        return None
    given = data.get("state")
    state = _STATES.get(given) if type(given) is str else None
    options = data.get("options", {})
    version = data.get("notice_version")
    locale = data.get("locale")
    if state is None or type(options) is not dict or options:
        return None
    if version is not None and not _name(version, 40):
        return None
    if state is ChoiceState.GRANTED and version is None:
        return None  # the route decides (a consent grant must name its notice: 422)
    if locale is not None and not (
        type(locale) is str and len(locale) == 2 and all("a" <= c <= "z" for c in locale)
    ):
        return None
    return state, version, locale


def _credential(scope: Scope) -> str | None:
    raw = _header(scope, b"authorization")
    if raw is None:
        return None
    scheme, _, token = raw.decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


# The scopes that may write a subject's permissions with a service key (as on the route).
_WRITE_SCOPES = frozenset({KeyScope.SUBJECTS_WRITE.value, KeyScope.ADMIN.value})


class PermissionPutFastPath:
    def __init__(self, app: ASGIApp, container: Container, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self.container = container
        self.consents = container.consents
        self._route: Any = None
        self._limiter: CapacityLimiter | None = None
        # Changes answered here (the rest went to the route): for tests and debugging.
        self.answered = 0

    def _target(self, scope: Scope) -> tuple[str, str] | None:
        if scope["type"] != "http" or scope["method"] != "PUT":
            return None
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        found = _PATH.fullmatch(path)
        if found is None or _SUBJECT.fullmatch(found[1]) is None:
            return None
        for name, _ in scope["headers"]:
            if name in (b"idempotency-key", b"sec-gpc"):
                return None
        content_type = _header(scope, b"content-type")
        if content_type is None or content_type.lower() not in _JSON_TYPES:
            return None
        return found[1], found[2]

    def _request(
        self, sid: str, pid: str, token: str, payload: bytes
    ) -> tuple[Change, Context, KeyCheck | None] | None:
        """The change asked for, with its context and the key to check; None when the route
        must answer."""
        try:
            change = plain_change(json.loads(payload))
        except ValueError:
            return None
        if change is None:
            return None
        state, version, locale = change
        key: KeyCheck | None = None
        if token.startswith(PREFIX):
            key, source = key_check(token, _WRITE_SCOPES), "api"
            if key is None:
                return None
        elif self.container.tokens.verify(token) == sid:
            source = "web"
        else:
            return None
        return (
            Change(permission_id=pid, state=state, notice_version=version),
            Context(source=source, locale=locale),
            key,
        )

    def _answer(self, outcome: ChangeOutcome) -> bytes:
        self.answered += 1
        return _OUT.dump_json(change_out(outcome.entries[0], outcome))

    def _apply(self, sid: str, change: Change, context: Context, key: KeyCheck | None) -> bytes:
        """The change, in a worker thread (the database has no async path)."""
        return self._answer(self.consents.change(sid, [change], context, key=key))

    async def _respond(self, sid: str, pid: str, token: str, payload: bytes) -> bytes | None:
        """The response body, or None when the route must answer."""
        asked = self._request(sid, pid, token, payload)
        if asked is None:
            return None
        change, context, key = asked
        outcome = await self.consents.change_on_loop(sid, change, context, key)
        if outcome is not None:
            return self._answer(outcome)
        if self._limiter is None:
            self._limiter = CapacityLimiter(WRITERS)
        return await to_thread.run_sync(
            self._apply, sid, change, context, key, limiter=self._limiter
        )

    def _matched_route(self) -> Any:
        """The route the app would have matched (the metrics label requests by its path)."""
        if self._route is None:
            self._route = next(
                (
                    r
                    for r, p in access.api_routes(self.api)
                    if p == ROUTE and "PUT" in (r.methods or ())
                ),
                None,
            )
        return self._route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._target(scope)
        token = _credential(scope) if target is not None else None
        if target is None or token is None:
            await self.app(scope, receive, send)
            return
        sid, pid = target

        async def answer(payload: bytes) -> bytes | None:
            return await self._respond(sid, pid, token, payload)

        await answer_or_pass(self.app, scope, receive, send, answer, self._matched_route)
