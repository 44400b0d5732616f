"""GET /v1/subjects/{sid}/receipts/{event_id}: the signed consent receipt of one ledger event."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from consentry.api.deps import ContainerDep, SubjectId, SubjectReader
from consentry.api.problems import Problem
from consentry.services.receipt_signing import ReceiptKeyError
from consentry.services.receipts import ReceiptsUnavailable, receipt_service

router = APIRouter(tags=["receipts"])
EventId = Annotated[str, Path(pattern=r"^[0-9a-fA-F-]{36}$", description="Ledger event id")]


@router.get(
    "/v1/subjects/{sid}/receipts/{event_id}",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
def get_receipt(
    sid: SubjectId, event_id: EventId, _: SubjectReader, container: ContainerDep
) -> Response:
    """``{"receipt": {...}, "jws": "..."}``, byte for byte the file ``consentry receipt verify``
    checks (any change to it fails verification)."""
    try:
        signed = receipt_service(container).issue(sid, event_id)
    except (ReceiptsUnavailable, ReceiptKeyError) as exc:
        raise Problem(503, str(exc), code="receipts_unavailable") from exc
    if signed is None:
        raise Problem(404, "no such event for this subject", code="not_found")
    return Response(
        signed.file_bytes(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{signed.filename}"',
            "Cache-Control": "no-store",
        },
    )
