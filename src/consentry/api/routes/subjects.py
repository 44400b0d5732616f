"""A subject's permissions, history and devices."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request

from consentry.api.notices import require_notice, require_notices
from consentry.api.schemas import (
    DeviceIn,
    DeviceOut,
    DevicesOut,
    EventOut,
    HistoryOut,
    PermissionChangeOut,
    PermissionIn,
    PermissionOut,
    PermissionsOut,
    PermissionsPatchIn,
    PermissionsPatchOut,
)
from consentry.domain.events import event_fields
from consentry.domain.planning import Change, ChangeOutcome, Context, expiry
from consentry.domain.state import ChoiceState
from consentry.domain.views import PermissionView, view_to_json
from consentry.http.credentials import Principal
from consentry.http.deps import (
    ContainerDep,
    SubjectId,
    SubjectReader,
    SubjectWriter,
)
from consentry.services import bulk
from consentry.services.idempotency import Idempotency

router = APIRouter(tags=["subjects"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
PermissionId = Annotated[str, Path(min_length=1, max_length=100)]
DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:\-]{1,100}$")]


def _out(v: PermissionView) -> PermissionOut:
    return PermissionOut.model_validate(view_to_json(v))


def change_out(v: PermissionView, outcome: ChangeOutcome) -> PermissionChangeOut:
    return PermissionChangeOut.model_validate(
        {**view_to_json(v), "changed": v.id in outcome.changed}
    )


def _source(principal: Principal) -> str:
    return "web" if principal.subject is not None else "api"


def _idempotency(
    key: str | None, principal: Principal, request: Request, body: object
) -> Idempotency | None:
    if key is None:
        return None
    raw = json.dumps([request.method, request.url.path, body], sort_keys=True, default=str)
    return Idempotency(principal.credential, key, hashlib.sha256(raw.encode()).hexdigest())


def patch_out(sid: str, outcome: ChangeOutcome) -> PermissionsPatchOut:
    entries = [change_out(v, outcome) for v in outcome.entries]
    return PermissionsPatchOut(
        subject=sid,
        changed=outcome.changed,
        event_ids=[e.event_id for e in entries if e.changed and e.event_id],
        permissions=entries,
    )


@router.get("/v1/subjects/{sid}/permissions", response_model=PermissionsOut)
def list_permissions(sid: SubjectId, _: SubjectReader, container: ContainerDep) -> PermissionsOut:
    views = container.queries.permissions(sid)
    return PermissionsOut(subject=sid, permissions=[_out(v) for v in views])


@router.put("/v1/subjects/{sid}/permissions/{pid}", response_model=PermissionChangeOut)
def put_permission(
    sid: SubjectId,
    pid: PermissionId,
    body: PermissionIn,
    principal: SubjectWriter,
    container: ContainerDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> PermissionChangeOut:
    require_notice(container.catalogue, pid, body.state, body.notice_version)
    change = Change(
        permission_id=pid,
        state=ChoiceState(body.state),
        options=body.options,
        notice_version=body.notice_version,
        expires_at=expiry(body.expires_at, body.duration, body.days, container.consents.clock()),
    )
    outcome = container.consents.change(
        sid,
        [change],
        Context(source=_source(principal), locale=body.locale),
        _idempotency(idempotency_key, principal, request, body.model_dump(mode="json")),
    )
    return change_out(outcome.entries[0], outcome)


@router.patch("/v1/subjects/{sid}/permissions", response_model=PermissionsPatchOut)
def patch_permissions(
    sid: SubjectId,
    body: PermissionsPatchIn,
    principal: SubjectWriter,
    container: ContainerDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> PermissionsPatchOut:
    consents = container.consents
    if body.all is not None:
        # Only what changes the subject's effective state (and objections to legitimate
        # interest on a refusal): see services.bulk.
        views = container.queries.permissions(sid)
        changes = bulk.plan(container.catalogue, views, ChoiceState(body.all))
        # Accepting all is a grant of each consent permission that is off: the caller must
        # name the notice version it showed for each, as for a single grant.
        versions = body.notice_versions or {}
        require_notices(container.catalogue, {c.permission_id: body.all for c in changes}, versions)
        changes = [
            replace(c, notice_version=versions[c.permission_id])
            if c.permission_id in versions
            else c
            for c in changes
        ]
    else:
        versions = body.notice_versions or {}
        require_notices(container.catalogue, body.set or {}, versions)
        changes = [
            Change(pid, ChoiceState(state), notice_version=versions.get(pid))
            for pid, state in (body.set or {}).items()
        ]
    outcome = consents.change(
        sid,
        changes,
        Context(source=_source(principal), locale=body.locale),
        _idempotency(idempotency_key, principal, request, body.model_dump(mode="json")),
    )
    return patch_out(sid, outcome)


@router.get("/v1/subjects/{sid}/history", response_model=HistoryOut)
def get_history(
    sid: SubjectId,
    _: SubjectReader,
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,12}$")] = None,
) -> HistoryOut:
    page = container.queries.history(sid, limit, cursor)
    return HistoryOut(
        subject=sid,
        events=[EventOut(**event_fields(e), permission=e.permission_id) for e in page.events],
        next_cursor=page.next_cursor,
    )


@router.put("/v1/subjects/{sid}/devices/{device_id}", response_model=DeviceOut)
def put_device(
    sid: SubjectId,
    device_id: DeviceId,
    body: DeviceIn,
    _: SubjectWriter,
    container: ContainerDep,
) -> DeviceOut:
    report = container.devices.report(
        sid, device_id, body.platform, body.app_version, body.os_permissions
    )
    return DeviceOut.model_validate(report, from_attributes=True)


@router.get("/v1/subjects/{sid}/devices", response_model=DevicesOut)
def list_devices(sid: SubjectId, _: SubjectReader, container: ContainerDep) -> DevicesOut:
    reports = container.devices.reported(sid)
    return DevicesOut(
        subject=sid,
        devices=[DeviceOut.model_validate(r, from_attributes=True) for r in reports],
    )
