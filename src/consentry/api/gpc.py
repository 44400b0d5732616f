"""Global Privacy Control: a browser's ``Sec-GPC: 1`` is an opt-out of sale and sharing.

California (11 CCR § 7025) requires a business that sells or shares to treat the signal as a
valid request to opt out, for the browser and the signed-in consumer, without asking for more.
The opt-out is ``ConsentService.opt_out_of_sale`` with source "gpc": ordinary
``permission_denied`` events in the subject's hash chain, so the proof is the ledger itself.

Honouring is read-first: a write happens only while some sale or sharing permission is still in
effect, so a browser that sends the header on every request costs one write, once. The signal
wins over an earlier grant (§ 7025(c)(3)); a customer who wants to allow sale again does so from
a browser that does not send it.

Two entry points: ``honour_signal``, an app-wide dependency that acts on subject-token requests
to ``/v1/subjects/{sid}...``; and ``honour_gpc``, which the Permissions page calls with its
signed-in subject.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from consentry.api.problems import Problem
from consentry.bootstrap import Container
from consentry.domain.planning import Context
from consentry.services.consents import ConsentService
from consentry.services.keys import PREFIX as SERVICE_KEY_PREFIX
from consentry.services.queries import SubjectQueries

log = logging.getLogger("consentry.gpc")
HEADER = "sec-gpc"
SOURCE = "gpc"
_SUBJECT_ROUTE = "/v1/subjects/{sid}"


def gpc_requested(value: str | None) -> bool:
    """Only the exact value "1" is a GPC signal ("0", "true", " 1" are not)."""
    return value == "1"


def signal_sent(headers: Headers) -> bool:
    """The request carries GPC: any of its ``Sec-GPC`` headers is exactly "1" (a request may
    repeat the header; one "1" among them is the signal)."""
    return any(gpc_requested(value) for value in headers.getlist(HEADER))


@dataclass(frozen=True, slots=True)
class GpcOutcome:
    """``requested``: the browser sent GPC. ``changed``: permissions this request withdrew
    (empty when an earlier request already did). When requested, nothing that is sale or
    sharing is in effect for the subject afterwards."""

    requested: bool
    changed: tuple[str, ...] = ()


def _sale_or_sharing_in_effect(queries: SubjectQueries, subject_id: str) -> bool:
    perms = queries.index.permissions
    return any(
        view.effective
        for view in queries.permissions(subject_id)
        if (perm := perms.get(view.id)) is not None and perm.sale_or_sharing and perm.toggleable
    )


def honour_gpc(
    consents: ConsentService, queries: SubjectQueries, subject_id: str, header: str | None
) -> GpcOutcome:
    """Apply a GPC header for a known (signed-in) subject. Safe to call on every request."""
    if not gpc_requested(header):
        return GpcOutcome(requested=False)
    if not _sale_or_sharing_in_effect(queries, subject_id):
        return GpcOutcome(requested=True)
    outcome = consents.opt_out_of_sale(subject_id, Context(source=SOURCE))
    if outcome.changed:
        log.info("GPC honoured: %d permission(s) withdrawn", len(outcome.changed))
    return GpcOutcome(requested=True, changed=tuple(outcome.changed))


def _signed_in_subject(request: Request, container: Container) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or token.startswith(SERVICE_KEY_PREFIX):
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
