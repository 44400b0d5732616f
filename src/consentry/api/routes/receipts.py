"""GET /v1/subjects/{sid}/receipts/{event_id}: the signed consent receipt of one ledger event."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from consentry.http.deps import ContainerDep, SubjectId, SubjectReader
from consentry.http.problems import Problem
from consentry.services import checkpoints
from consentry.services.receipt_signing import ReceiptKeyError
from consentry.services.receipts import ReceiptsUnavailable

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
        signed = container.receipts().issue(sid, event_id)
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


@router.get("/v1/subjects/{sid}/receipts/{event_id}/inclusion")
def get_inclusion(
    sid: SubjectId, event_id: EventId, _: SubjectReader, container: ContainerDep
) -> dict[str, Any]:
    """The proof that the event is covered by a published checkpoint: the signed checkpoint
    line, the chain's head it recorded (leaf ``index``, 68 bytes ``ref || seq || hash``), the
    RFC 6962 audit path from that leaf to the signed root, and the hashes linking the event to
    that head. 404 when the subject has no such event or no checkpoint covers it yet."""
    located = container.queries.event(sid, event_id)
    if located is None:
        raise Problem(404, "no such event for this subject", code="not_found")
    event, _previous = located
    proof = checkpoints.inclusion(container.db, event.subject_ref, event.seq)
    if proof is None:
        raise Problem(404, "no checkpoint covers this event yet", code="not_covered")
    links = checkpoints.links(container.db, event.subject_ref, event.seq, proof.leaf.seq)
    return {
        "checkpoint": json.loads(proof.line),
        "leaf": {
            "index": proof.index,
            "subject_ref": proof.leaf.ref,
            "seq": proof.leaf.seq,
            "head_hash": proof.leaf.hash,
            "hashing": "SHA-256(0x00 || ref (32 bytes) || seq (4 bytes, big-endian) || hash)",
        },
        "audit_path": proof.path,
        "event": {"seq": event.seq, "hash": event.hash},
        "chain_to_head": [{"seq": s, "prev_hash": p, "hash": h} for s, p, h in links],
    }
