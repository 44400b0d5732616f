"""The storefront runtime's HTTP surface: ``/consentry.js`` (+ its stylesheet), the visit of a
device subject, the choices made in the banner, and the merge of a device into an account.

Security (docs/security.md, "Device subjects"): a visit needs no credential; the device comes
from the signed first-party cookie, or a new one is started (rate-limited per address). The
script gets a one-hour subject token for that device alone, so what it can read or write is
the device's own ledger, through the same subject routes and limits as any subject token.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from consentry.bootstrap import Container
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState, Source
from consentry.http import access
from consentry.http.access import Access
from consentry.http.deps import ContainerDep, SubjectId, SubjectWriter
from consentry.http.problems import Problem
from consentry.http.ratelimit import TokenBuckets
from consentry.services.signals import honour_gpc
from consentry.storefront import rules
from consentry.storefront.config import script_config
from consentry.storefront.device import COOKIE, COOKIE_TTL, TOKEN_TTL, Devices
from consentry.storefront.texts import pick_locale, texts

router = APIRouter(tags=["storefront"])
PERMISSIONS_LINK = "/permissions"
_lock = threading.Lock()


@cache
def _asset(name: str) -> str:
    return resources.files("consentry.storefront").joinpath(name).read_text(encoding="utf-8")


def script_body(container: Container) -> bytes:
    """consentry.js with the site's settings written in (see ``config.script_config``)."""
    settings = container.settings
    config = script_config(
        container.catalogue,
        cmp_id=settings.storefront_cmp_id,
        gdpr_applies=settings.storefront_gdpr_applies,
    )
    text = _asset("consentry.js").replace(
        "/*CONFIG*/ {}", json.dumps(config, separators=(",", ":"), sort_keys=True)
    )
    return text.encode()


def _state(request: Request, name: str, make: Any) -> Any:
    with _lock:
        value = getattr(request.app.state, name, None)
        if value is None:
            value = make()
            setattr(request.app.state, name, value)
        return value


@router.get("/consentry.js", include_in_schema=False)
def script(request: Request, container: ContainerDep) -> Response:
    body = _state(request, "storefront_script", lambda: script_body(container))
    return Response(
        body,
        media_type="text/javascript; charset=utf-8",
        headers={
            "Cache-Control": "public, max-age=300",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


@router.get("/consentry.css", include_in_schema=False)
def stylesheet() -> Response:
    return Response(
        _asset("consentry.css"),
        media_type="text/css; charset=utf-8",
        headers={
            "Cache-Control": "public, max-age=300",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


Language = Annotated[str, StringConstraints(max_length=35)]


class VisitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    languages: list[Language] = Field(default_factory=list, max_length=20)
    gpc: StrictBool = False


def _devices(request: Request, container: Container) -> Devices:
    devices: Devices = _state(request, "storefront_devices", lambda: Devices(container.settings))
    if not devices.available:
        raise Problem(503, "device subjects need CONSENTRY_JWT_SECRET", code="storefront")
    return devices


def _admit_new_device(request: Request, container: Container) -> None:
    per_minute = container.settings.storefront_new_devices_per_minute
    if per_minute <= 0:
        return
    buckets: TokenBuckets = _state(
        request,
        "storefront_new_devices",
        lambda: TokenBuckets(per_minute / 60, max(int(per_minute), 1)),
    )
    address = request.client.host if request.client else "unknown"
    with _lock:
        wait = buckets.wait(address)
        if wait > 0:
            raise Problem(
                429,
                "too many new visitors from this address; retry later",
                retry_after=max(1, round(wait)),
            )
        buckets.take(address)


@router.post("/v1/storefront/visit", openapi_extra=access.declare(Access.PUBLIC))
def visit(body: VisitIn, request: Request, container: ContainerDep) -> JSONResponse:
    """The visitor's device subject (from its cookie, or a new one), a one-hour token for it,
    and what the banner must ask (empty: no banner). ``gpc``: the browser's
    ``navigator.globalPrivacyControl``, honoured as the server honours ``Sec-GPC: 1``."""
    devices = _devices(request, container)
    subject = devices.read(request.cookies.get(COOKIE))
    if subject is None:
        _admit_new_device(request, container)
        subject = devices.start()
    consents, catalogue = container.consents, container.catalogue
    if body.gpc:
        honour_gpc(consents, container.queries, subject, "1")
    ask = rules.needs_asking(catalogue, container.queries.permissions(subject), consents.clock())
    locale = pick_locale(body.languages, catalogue.locales, catalogue.default_locale)
    words = texts(locale, rules.partner_count(catalogue))
    answer = {
        "subject": subject,
        "token": devices.token(subject),
        "expires_in": int(TOKEN_TTL.total_seconds()),
        "locale": locale,
        "ask": ask,
        "banner": rules.banner_version(catalogue, words),
        "texts": words,
        "partners": rules.partner_count(catalogue),
        "permissions": [
            {"id": p.id, "title": catalogue.text(p.notice.title, locale)}
            for p in rules.banner_permissions(catalogue)
        ],
        "link": PERMISSIONS_LINK,
        "gpc": body.gpc,
    }
    response = JSONResponse(answer, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        devices.cookie(subject),
        max_age=COOKIE_TTL,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


State = Literal["granted", "denied"]


class ChoicesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    all: State | None = None
    set: dict[Annotated[str, StringConstraints(max_length=100)], State] | None = Field(
        default=None, max_length=1000
    )
    banner: Annotated[str, StringConstraints(pattern=r"^banner-[0-9a-f]{16}$")] | None = None
    locale: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] | None = None
    gpc: StrictBool = False  # navigator.globalPrivacyControl: honoured after the choice, as Sec-GPC


@router.post("/v1/subjects/{sid}/choices", openapi_extra=access.declare(Access.SUBJECT_WRITE))
def record_choices(
    sid: SubjectId, _: SubjectWriter, body: ChoicesIn, container: ContainerDep
) -> dict[str, Any]:
    """A choice made in the banner: "all" (every consent permission) or "set" (some). Recorded
    like any change, with the banner shown (its version) as the event's channel. ``gpc``: the
    browser sends Global Privacy Control, so sale and sharing are then withdrawn (source gpc)."""
    if (body.all is None) == (body.set is None):
        raise Problem(422, "give exactly one of 'all' or 'set'")
    consents = container.consents
    if body.all is not None:
        changes = consents.all_consents(ChoiceState(body.all))
    else:
        changes = [Change(pid, ChoiceState(state)) for pid, state in (body.set or {}).items()]
        if not changes:
            raise Problem(422, "'set' names no permission")
    context = Context(source=Source.BANNER.value, locale=body.locale, channel=body.banner)
    outcome = consents.change(sid, changes, context)
    event_ids = [e.event_id for e in outcome.entries if e.id in outcome.changed]
    changed = list(outcome.changed)
    if body.gpc:  # the signal wins over the choice just made, as it does with Sec-GPC
        withdrawn = honour_gpc(consents, container.queries, sid, "1").changed
        changed += [pid for pid in withdrawn if pid not in changed]
    return {"subject": sid, "changed": changed, "event_ids": event_ids}


def merge_device(container: Container, device: str, account: str) -> list[rules.Merged]:
    """Merge a device subject's choices into an account (the rule: ``rules.merge_plan``).
    The changes are ordinary events on the account, source "device_merge", channel naming the
    device by its ledger reference."""
    consents, queries = container.consents, container.queries
    plan = rules.merge_plan(
        container.catalogue, queries.permissions(device), queries.permissions(account)
    )
    if plan:
        ref = queries.chain_ref(device) or "-"
        context = Context(source=Source.DEVICE_MERGE.value, channel=f"device {ref[:16]}")
        consents.change(account, [Change(m.permission_id, m.state) for m in plan], context)
    return plan


@router.post("/v1/subjects/{sid}/merge-device", openapi_extra=access.declare(Access.SUBJECT_WRITE))
def merge(
    sid: SubjectId, _: SubjectWriter, request: Request, container: ContainerDep
) -> dict[str, Any]:
    """On sign-in: merge the browser's device subject (its cookie) into account ``sid`` (the
    caller's subject token, or a platform key). Both credentials are needed: the cookie proves
    the device, the token the account."""
    devices = _devices(request, container)
    device = devices.read(request.cookies.get(COOKIE))
    if device is None:
        raise Problem(404, f"no device subject: the {COOKIE} cookie is missing or not valid")
    if device == sid:
        raise Problem(409, "a device cannot be merged into itself")
    plan = merge_device(container, device, sid)
    return {
        "subject": sid,
        "merged": [{"id": m.permission_id, "state": m.state.value, "why": m.why} for m in plan],
    }
