"""Access reports over HTTP: services report uses; subjects see who used their data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from consentry.api.schemas import IsoDateTime
from consentry.http.credentials import Principal
from consentry.http.deps import Admin, ContainerDep, SubjectId, SubjectReader, require
from consentry.scopes import Scope
from consentry.services.uses import UseReport
from consentry.storage.uses import RefusedCount, UseRow

router = APIRouter(tags=["uses"])
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
UsesWriter = Annotated[Principal, require(Scope.USES_WRITE)]


class UseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    purpose: Name
    categories: list[Name] = Field(min_length=1, max_length=50)
    recipient: Name | None = None
    used_at: IsoDateTime | None = None
    # "refrained": the service asked, was told no and did not use the data (never a violation).
    outcome: Literal["used", "refrained"] = "used"

    @model_validator(mode="after")
    def _aware(self) -> UseIn:
        if self.used_at is not None and self.used_at.tzinfo is None:
            raise ValueError("used_at needs a time zone (e.g. 2026-11-29T10:00:00Z)")
        return self


class UsesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uses: list[UseIn] = Field(min_length=1, max_length=1000)


class UsesRecorded(BaseModel):
    accepted: int
    violations: int


class UseOut(BaseModel):
    purpose: str
    categories: list[str]
    recipient: str | None
    permission: str | None
    service: str
    used_at: datetime
    allowed: bool
    reason: str
    outcome: Literal["used", "refrained"]


class UseGroupOut(BaseModel):
    purpose: str
    recipient: str | None
    count: int
    first_used: datetime
    last_used: datetime
    services: list[str]
    violations: int


class RefusedOut(BaseModel):
    """Uses refrained from in the last 7 days because the subject's choices said no."""

    permission: str | None
    purpose: str
    count: int
    last_refused: datetime


class SubjectUsesOut(BaseModel):
    subject: str
    groups: list[UseGroupOut]
    recent: list[UseOut]
    refused: list[RefusedOut]


class ViolationOut(UseOut):
    subject: str
    recorded_at: datetime


class ViolationsOut(BaseModel):
    violations: list[ViolationOut]


def _use(row: UseRow) -> dict[str, object]:
    return {
        "purpose": row.purpose,
        "categories": list(row.categories),
        "recipient": row.recipient,
        "permission": row.permission_id,
        "service": row.service,
        "used_at": row.used_at,
        "allowed": row.allowed,
        "reason": row.reason,
        "outcome": row.outcome,
    }


def _refused(count: RefusedCount) -> RefusedOut:
    return RefusedOut(
        permission=count.permission_id,
        purpose=count.purpose,
        count=count.count,
        last_refused=count.last_at,
    )


@router.post("/v1/uses", response_model=UsesRecorded)
def post_uses(body: UsesIn, principal: UsesWriter, container: ContainerDep) -> UsesRecorded:
    reports = [
        UseReport(u.subject, u.purpose, tuple(u.categories), u.recipient, u.used_at, u.outcome)
        for u in body.uses
    ]
    # Named as the key was labelled, so the customer reads "recommendations-service".
    outcome = container.uses.record(reports, service=principal.name or principal.credential)
    return UsesRecorded(accepted=outcome.accepted, violations=outcome.violations)


@router.get("/v1/subjects/{sid}/uses", response_model=SubjectUsesOut)
def get_subject_uses(sid: SubjectId, _: SubjectReader, container: ContainerDep) -> SubjectUsesOut:
    groups, recent = container.uses.for_subject(sid)
    return SubjectUsesOut(
        subject=sid,
        groups=[UseGroupOut.model_validate(g, from_attributes=True) for g in groups],
        recent=[UseOut.model_validate(_use(r)) for r in recent],
        refused=[_refused(c) for c in container.uses.refused(sid)],
    )


@router.get("/v1/admin/violations", response_model=ViolationsOut)
def get_violations(
    _: Admin,
    container: ContainerDep,
    since: Annotated[IsoDateTime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ViolationsOut:
    rows = container.uses.violations(since, limit)
    return ViolationsOut(
        violations=[
            ViolationOut.model_validate(
                {**_use(r), "subject": r.subject_id, "recorded_at": r.recorded_at}
            )
            for r in rows
        ]
    )
