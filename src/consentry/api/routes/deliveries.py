"""Webhook deliveries over HTTP: dead letters and retries for admins; per recipient, for a
subject, whether their opt-out reached each third party."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from consentry.bootstrap import Container
from consentry.http.deps import Admin, ContainerDep, SubjectId, SubjectReader
from consentry.http.problems import Problem
from consentry.services.deliveries import AlreadyAcknowledged, Delivery, DeliveryService

router = APIRouter(tags=["deliveries"])

Status = Literal["pending", "sent", "acknowledged", "dead"]


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    type: str  # consentry.opt_out | consentry.erasure
    recipient: str
    subject: str | None  # None for an erasure notice (by subject_ref only)
    permission: str | None
    reason: str | None  # withdrawal | gpc
    status: Status
    attempts: int
    next_attempt_at: datetime | None  # None once acknowledged or dead
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    acknowledged_at: datetime | None


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]
    next_after: int | None  # pass as ?after= for the next page


class SubjectDeliveryOut(BaseModel):
    type: str
    permission: str | None
    reason: str | None
    status: Status
    requested_at: datetime  # when the relay passed the subject's change on
    sent_at: datetime | None  # first time the recipient answered at all
    acknowledged_at: datetime | None  # the recipient answered 2xx


class RecipientDeliveriesOut(BaseModel):
    recipient: str
    name: str
    country: str | None
    status: Status  # of the latest delivery
    sent_at: datetime | None
    acknowledged_at: datetime | None
    deliveries: list[SubjectDeliveryOut]  # newest first


class SubjectDeliveriesOut(BaseModel):
    subject: str
    recipients: list[RecipientDeliveriesOut]


def _service(container: Container) -> DeliveryService:
    return DeliveryService(container.db, container.catalogue)


def _out(d: Delivery) -> DeliveryOut:
    row = d.row
    open_ = row.status in ("pending", "sent")
    return DeliveryOut(
        id=row.id,
        event_id=row.event_id,
        type=d.kind,
        recipient=row.recipient,
        subject=row.subject_id,
        permission=d.body.get("permission"),
        reason=d.body.get("reason"),
        status=cast(Status, row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if open_ else None,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
        acknowledged_at=row.acknowledged_at,
    )


@router.get("/v1/admin/deliveries", response_model=DeliveriesOut)
def list_deliveries(
    _: Admin,
    container: ContainerDep,
    status: Annotated[list[Status], Query(description="One or more; default dead")] = ["dead"],  # noqa: B006
    after: Annotated[int | None, Query(ge=0, description="Delivery id to continue after")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveriesOut:
    """Webhook deliveries by status, oldest first: ``dead`` ones gave up after the maximum
    attempts; ``pending`` ones have not reached the recipient yet."""
    found = _service(container).listing(status, limit, after)
    return DeliveriesOut(
        deliveries=[_out(d) for d in found],
        next_after=found[-1].row.id if len(found) == limit else None,
    )


@router.post("/v1/admin/deliveries/{delivery_id}/retry", response_model=DeliveryOut)
def retry_delivery(
    _: Admin,
    container: ContainerDep,
    delivery_id: Annotated[int, Path(ge=1)],
) -> DeliveryOut:
    """Give a delivery (typically a dead one) a fresh round of attempts, starting now."""
    try:
        found = _service(container).retry(delivery_id)
    except AlreadyAcknowledged as exc:
        raise Problem(409, str(exc), code="already_acknowledged") from exc
    if found is None:
        raise Problem(404, f"no delivery {delivery_id}", code="not_found")
    return _out(found)


@router.get("/v1/subjects/{sid}/deliveries", response_model=SubjectDeliveriesOut)
def subject_deliveries(
    sid: SubjectId, _: SubjectReader, container: ContainerDep
) -> SubjectDeliveriesOut:
    """Per third party: the subject's opt-outs sent to it, and whether it acknowledged them."""
    recipients = []
    for group in _service(container).for_subject(sid):
        latest = group.latest.row
        recipients.append(
            RecipientDeliveriesOut(
                recipient=group.recipient,
                name=group.name,
                country=group.country,
                status=cast(Status, latest.status),
                sent_at=latest.sent_at,
                acknowledged_at=latest.acknowledged_at,
                deliveries=[
                    SubjectDeliveryOut(
                        type=d.kind,
                        permission=d.body.get("permission"),
                        reason=d.body.get("reason"),
                        status=cast(Status, d.row.status),
                        requested_at=d.row.created_at,
                        sent_at=d.row.sent_at,
                        acknowledged_at=d.row.acknowledged_at,
                    )
                    for d in group.deliveries
                ],
            )
        )
    return SubjectDeliveriesOut(subject=sid, recipients=recipients)
