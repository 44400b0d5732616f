"""The API's fast paths (base and contract: ``http/fastpath.py``).

``DecisionFastPath``: POST /v1/decisions and /v1/decisions/batch (reference: the routes in
``api/routes/decisions.py``). It takes:

- a JSON body that :func:`valid_check` accepts for every check (a strict subset of what
  ``DecisionIn`` accepts, with the same values), at most ``max_batch`` checks;
- a service key with the ``decide`` scope, verified as the route verifies it and remembered
  in the same key cache (``credentials.remembered_key``);
- decisions the in-process replica can give (``ServerReplica.answer``).

The bytes answered are the ones FastAPI would render for ``DecisionOut``/``DecisionBatchOut``.

``PermissionPutFastPath``: PUT /v1/subjects/{sid}/permissions/{pid} (reference: the route in
``api/routes/subjects.py``, with its Global Privacy Control dependency and idempotency). It
takes:

- a JSON body that :func:`plain_change` accepts: ``state``, and optionally ``notice_version``,
  ``locale`` and empty ``options`` (a strict subset of what ``PermissionIn`` accepts);
- no ``Idempotency-Key`` and no ``Sec-GPC`` header (the route handles both);
- a service key with the ``subjects:write`` (or ``admin``) scope, checked by the change's own
  read (no statement of its own on PostgreSQL; a revoked key is refused at once, as on the
  route), or that subject's own token;
- a change the service accepts (an unknown, non-toggleable or outdated permission raises).

The change is handed from the event loop to the database's group commit
(``ConsentService.change_on_loop``) and answered once its batch committed. The bytes answered
are the ones FastAPI renders for ``PermissionChangeOut`` (the route's own ``change_out``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Scope

from consentry.api.routes.subjects import change_out
from consentry.api.schemas import PermissionChangeOut
from consentry.bootstrap import Container
from consentry.domain.planning import Change, ChangeOutcome, Context
from consentry.domain.rules import Decision
from consentry.domain.state import ChoiceState
from consentry.feed.server import DecisionTuple
from consentry.http.credentials import is_service_key, raw_header, scope_bearer
from consentry.http.deps import SUBJECT_ID_PATTERN
from consentry.http.fastpath import Answer, FastPath, json_content, name_ok
from consentry.scopes import Scope as KeyScope
from consentry.services.keys import KeyCheck, key_check

SINGLE = "/v1/decisions"
BATCH = "/v1/decisions/batch"
_CHECK_FIELDS = frozenset({"subject", "purpose", "categories", "recipient", "device"})
_MAX_RENDERED = 10_000


def valid_check(item: object) -> DecisionTuple | None:
    """The check as (subject, purpose, categories, recipient) when ``DecisionIn`` surely
    accepts it and it asks nothing about a device; else None (the route answers)."""
    if type(item) is not dict or not item.keys() <= _CHECK_FIELDS or item.get("device") is not None:
        return None
    subject = item.get("subject")
    purpose = item.get("purpose")
    categories = item.get("categories")
    recipient = item.get("recipient")
    if not (name_ok(subject, 200) and name_ok(purpose, 100)):
        return None
    if type(categories) is not list or not 0 < len(categories) <= 50:
        return None
    for category in categories:
        if not name_ok(category, 100):
            return None
    if recipient is not None and not name_ok(recipient, 100):
        return None
    return subject, purpose, tuple(categories), recipient  # type: ignore[return-value]


def _checks(items: list[Any]) -> list[DecisionTuple] | None:
    """Every item as a tuple (see ``valid_check``), or None. The common case (ASCII names,
    one category, no device) is tested inline; anything else goes through ``valid_check``."""
    fields = _CHECK_FIELDS
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


class DecisionFastPath(FastPath):
    method = "POST"

    def __init__(self, app: ASGIApp, container: Container, api: FastAPI) -> None:
        super().__init__(app, container, api)
        self.replica = container.replica
        self.max_batch = container.settings.max_batch
        self.consents = container.consents  # its clock is read per request, as the routes do
        self._counters: dict[tuple[bool, str], Any] = {}
        self._rendered: dict[Decision, bytes] = {}

    async def ask(self, scope: Scope, path: str) -> tuple[str, Answer] | None:
        if path not in (SINGLE, BATCH):
            return None
        token = scope_bearer(scope)
        if token is None or not is_service_key(token):
            return None
        key = await self.service_key(token)
        if key is None or not key.has(KeyScope.DECIDE) or not json_content(scope, required=False):
            return None

        async def answer(payload: bytes) -> bytes | None:
            return self._body(path, payload) if payload else None

        return path, answer

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

    def _body(self, path: str, payload: bytes) -> bytes | None:
        """The response body, or None when the route must answer."""
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        if path == SINGLE:
            check = valid_check(data)
            decisions = None if check is None else self._decide([check])
            if decisions is None:
                return None
            self._count([(decisions[0], 1)])
            return self._render(decisions[0])
        if type(data) is not dict or data.keys() != {"checks"}:
            return None
        items = data["checks"]
        if type(items) is not list or not 0 < len(items) <= self.max_batch:
            return None
        checks = _checks(items)
        decisions = None if checks is None else self._decide(checks)
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


ROUTE = "/v1/subjects/{sid}/permissions/{pid}"
_PATH = re.compile(r"/v1/subjects/([^/]+)/permissions/([^/]{1,100})")
_SUBJECT = re.compile(SUBJECT_ID_PATTERN.removeprefix("^").removesuffix("$"))
_CHANGE_FIELDS = frozenset({"state", "options", "notice_version", "locale"})
_STATES = {"granted": ChoiceState.GRANTED, "denied": ChoiceState.DENIED}
_OUT = TypeAdapter(PermissionChangeOut)
# The scopes that may write a subject's permissions with a service key (as on the route).
_WRITE_SCOPES = frozenset({KeyScope.SUBJECTS_WRITE.value, KeyScope.ADMIN.value})


def plain_change(data: object) -> tuple[ChoiceState, str | None, str | None] | None:
    """(state, notice_version, locale) when ``PermissionIn`` surely accepts the body and it
    asks for nothing but a plain grant or refusal; else None (the route answers)."""
    if type(data) is not dict or not data.keys() <= _CHANGE_FIELDS:
        return None
    given = data.get("state")
    state = _STATES.get(given) if type(given) is str else None
    options = data.get("options", {})
    version = data.get("notice_version")
    locale = data.get("locale")
    if state is None or type(options) is not dict or options:
        return None
    if version is not None and not name_ok(version, 40):
        return None
    if state is ChoiceState.GRANTED and version is None:
        return None  # the route decides (a consent grant must name its notice: 422)
    if locale is not None and not (
        type(locale) is str and len(locale) == 2 and all("a" <= c <= "z" for c in locale)
    ):
        return None
    return state, version, locale


class PermissionPutFastPath(FastPath):
    method = "PUT"

    def __init__(self, app: ASGIApp, container: Container, api: FastAPI) -> None:
        super().__init__(app, container, api)
        self.consents = container.consents

    async def ask(self, scope: Scope, path: str) -> tuple[str, Answer] | None:
        found = _PATH.fullmatch(path)
        if found is None or _SUBJECT.fullmatch(found[1]) is None:
            return None
        if raw_header(scope, b"idempotency-key") is not None:
            return None
        if raw_header(scope, b"sec-gpc") is not None or not json_content(scope, required=True):
            return None
        token = scope_bearer(scope)
        if token is None:
            return None
        sid, pid = found[1], found[2]

        async def answer(payload: bytes) -> bytes | None:
            return await self._respond(sid, pid, token, payload)

        return ROUTE, answer

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
        if is_service_key(token):
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

    async def _respond(self, sid: str, pid: str, token: str, payload: bytes) -> bytes | None:
        """The response body, or None when the route must answer."""
        asked = self._request(sid, pid, token, payload)
        if asked is None:
            return None
        change, context, key = asked
        outcome = await self.consents.change_on_loop(sid, change, context, key)
        return self._answer(outcome) if outcome is not None else None
