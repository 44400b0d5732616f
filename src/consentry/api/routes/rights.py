"""A subject's rights over HTTP: jurisdiction, objection, do-not-sell, export, erasure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, StrictBool

from consentry.api.routes.subjects import patch_out
from consentry.api.schemas import PermissionsPatchOut
from consentry.domain.jurisdictions import region_of
from consentry.domain.planning import Context
from consentry.http.credentials import Principal
from consentry.http.deps import (
    ContainerDep,
    PlatformWriter,
    SubjectId,
    SubjectReader,
    SubjectWriter,
)
from consentry.services import erasure_notes
from consentry.services.receipt_signing import ReceiptKeyError, load_receipt_keys
from consentry.services.rights import rules_for

router = APIRouter(tags=["rights"])


class SubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jurisdiction: str | None


class SubjectOut(BaseModel):
    subject: str
    jurisdiction: str | None
    region: str
    rules: str


class ObjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    objected: StrictBool = True  # 0, 1, "yes" are no answer: a wrong type is refused


class ErasureOut(BaseModel):
    subject: str
    erased: bool
    subject_ref: str
    event_id: str
    removed: dict[str, int]
    erased_at: datetime | None = None
    statement: str = ""
    # Signed with the receipt key when one is configured: {"receipt": {...}, "jws": "..."}.
    erasure_receipt: dict[str, Any] | None = None


def _source(principal: Principal) -> str:
    return "web" if principal.subject is not None else "api"


def _subject_out(sid: str, jurisdiction: str | None) -> SubjectOut:
    return SubjectOut(
        subject=sid,
        jurisdiction=jurisdiction,
        region=region_of(jurisdiction),
        rules=rules_for(jurisdiction),
    )


@router.get("/v1/subjects/{sid}", response_model=SubjectOut)
def get_subject(sid: SubjectId, _: SubjectReader, container: ContainerDep) -> SubjectOut:
    return _subject_out(sid, container.rights.jurisdiction(sid))


@router.put("/v1/subjects/{sid}", response_model=SubjectOut)
def put_subject(
    sid: SubjectId, body: SubjectIn, _: PlatformWriter, container: ContainerDep
) -> SubjectOut:
    # The platform knows where a customer lives; the customer's own token cannot move them
    # to a laxer regime.
    return _subject_out(sid, container.rights.set_jurisdiction(sid, body.jurisdiction))


@router.put("/v1/subjects/{sid}/objections/{pid}", response_model=PermissionsPatchOut)
def put_objection(
    sid: SubjectId,
    pid: Annotated[str, Path(min_length=1, max_length=100)],
    body: ObjectionIn,
    principal: SubjectWriter,
    container: ContainerDep,
) -> PermissionsPatchOut:
    outcome = container.rights.object(sid, pid, body.objected, Context(source=_source(principal)))
    return patch_out(sid, outcome)


@router.put("/v1/subjects/{sid}/do-not-sell", response_model=PermissionsPatchOut)
def put_do_not_sell(
    sid: SubjectId, principal: SubjectWriter, container: ContainerDep
) -> PermissionsPatchOut:
    outcome = container.consents.opt_out_of_sale(sid, Context(source=_source(principal)))
    return patch_out(sid, outcome)


@router.get("/v1/subjects/{sid}/export", response_model=None)
def export(
    sid: SubjectId,
    _: SubjectReader,
    container: ContainerDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> StreamingResponse:
    if format == "csv":
        body = container.rights.export_csv(sid)
        media = "text/csv; charset=utf-8"
    else:
        body = container.rights.export_json(sid)
        media = "application/json"
    filename = f"consentry-export.{format}"
    return StreamingResponse(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.delete("/v1/subjects/{sid}", response_model=ErasureOut)
def delete_subject(sid: SubjectId, principal: SubjectWriter, container: ContainerDep) -> ErasureOut:
    """Erase the subject: every personal value goes, the id is unlinked from its ledger chain
    (which stays, unreadable and unlinked, as proof). The answer says what was erased and when,
    in plain words, and signs it when receipts are on: keep it, nothing else can recall it."""
    outcome = container.rights.erase(sid, Context(source=_source(principal)))
    erased_at = outcome.erased_at or datetime.now(UTC)
    try:
        keys = load_receipt_keys(container.settings)
    except ReceiptKeyError:
        keys = None
    signed = (
        erasure_notes.receipt(
            keys,
            ref=outcome.subject_ref,
            event_id=outcome.event_id,
            seq=outcome.seq,
            erased_at=erased_at,
            removed=outcome.removed,
        )
        if keys is not None
        else None
    )
    return ErasureOut(
        subject=sid,
        erased=True,
        subject_ref=outcome.subject_ref,
        event_id=outcome.event_id,
        removed=outcome.removed,
        erased_at=erased_at,
        statement=erasure_notes.statement(
            outcome.subject_ref, erased_at, outcome.seq, outcome.removed
        ),
        erasure_receipt=signed,
    )
