"""Public well-known resources: the GPC support statement, the receipt verification keys and
the signed checkpoints of the ledger."""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from consentry.http.deps import ContainerDep
from consentry.http.problems import Problem
from consentry.services import checkpoints
from consentry.services.receipt_signing import ReceiptKeyError, load_receipt_keys

router = APIRouter(tags=["well-known"])


@router.get("/.well-known/gpc.json")
def gpc_json(container: ContainerDep) -> JSONResponse:
    """GPC spec: this site honours Global Privacy Control. ``lastUpdate`` is the
    ``gpc_last_update`` setting (CONSENTRY_GPC_LAST_UPDATE), by default the date this server's
    GPC support last changed (``config.GPC_SUPPORT_UPDATED``)."""
    body = {"gpc": True, "lastUpdate": container.settings.gpc_last_update.isoformat()}
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/.well-known/consentry-keys.json")
def receipt_keys(container: ContainerDep) -> JSONResponse:
    """The JWK set that verifies consent receipts: the current signing key and every retired
    one still configured (CONSENTRY_RECEIPT_PREVIOUS_KEYS). Empty when receipts are off."""
    try:
        keys = load_receipt_keys(container.settings)
    except ReceiptKeyError as exc:
        raise Problem(503, str(exc), code="receipts_unavailable") from exc
    return JSONResponse(
        keys.jwks(),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/.well-known/consentry-checkpoints.json")
def checkpoint_log(container: ContainerDep) -> JSONResponse:
    """Every signed checkpoint, oldest first (``services/checkpoints.py`` gives the format):
    the same lines as ``consentry ledger checkpoint --out FILE``. Copy it off-site; ``consentry
    ledger verify --checkpoints FILE`` checks the database against the copy. Checkpoints carry
    no personal data: roots over pseudonymous chain heads."""
    lines = checkpoints.published(container.db)
    body = {
        "format": checkpoints.FORMAT,
        "checkpoints": [json.loads(line) for line in lines],
    }
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})
