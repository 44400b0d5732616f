"""Global Privacy Control over HTTP: reading a browser's ``Sec-GPC`` header.

What the signal does is the use case ``services/signals.py`` (an opt-out of sale and sharing,
recorded in the subject's ledger). Here: whether a request carries it (:func:`signal_sent`), and
``honour_signal``, an app-wide dependency that honours it on subject-token requests to
``/v1/subjects/{sid}...``. The Permissions page and the storefront's routes call
``services.signals.honour_gpc`` with their signed-in subject.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from consentry.bootstrap import Container
from consentry.http.credentials import bearer, is_service_key
from consentry.http.problems import Problem
from consentry.services.signals import gpc_requested, honour_gpc

log = logging.getLogger("consentry.gpc")
HEADER = "sec-gpc"
_SUBJECT_ROUTE = "/v1/subjects/{sid}"


def signal_sent(headers: Headers) -> bool:
    """The request carries GPC: any of its ``Sec-GPC`` headers is exactly "1" (a request may
    repeat the header; one "1" among them is the signal)."""
    return any(gpc_requested(value) for value in headers.getlist(HEADER))


def signal(headers: Headers) -> str | None:
    """The signal's value for ``services.signals.honour_gpc``: "1" when sent, else None."""
    return "1" if signal_sent(headers) else None


def _signed_in_subject(request: Request, container: Container) -> str | None:
    token = bearer(request.headers.get("authorization"))
    if token is None or is_service_key(token):
        return None  # a platform service's key: the header is not the customer's browser
    return container.tokens.verify(token)


async def honour_signal(request: Request) -> None:
    """App-wide dependency: on a subject-token request to that subject's resources, honour
    GPC before the route runs, so its answer already reflects the opt-out. Erasure (DELETE) is
    left alone. A failure to record the opt-out fails the request (503): the route must not act
    as if the signal had been honoured."""
    if not signal_sent(request.headers) or request.method == "DELETE":
        return
    route: Any = request.scope.get("route")
    path = getattr(route, "path", "")
    if not (path == _SUBJECT_ROUTE or path.startswith(_SUBJECT_ROUTE + "/")):
        return
    sid = request.path_params.get("sid")
    container: Container = request.app.state.container
    if not isinstance(sid, str) or _signed_in_subject(request, container) != sid:
        return  # the route's own authentication answers the request
    try:
        # Async so that the common case (no GPC header) costs no thread hop on every request.
        await run_in_threadpool(honour_gpc, container.consents, container.queries, sid, "1")
    except Exception as exc:
        log.exception("could not record a GPC opt-out")
        raise Problem(
            503, "could not record your browser's opt-out of sale and sharing; retry", code="gpc"
        ) from exc
