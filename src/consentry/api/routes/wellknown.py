"""Public well-known resources: the GPC support statement and the receipt verification keys."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from consentry.api.deps import ContainerDep
from consentry.api.problems import Problem
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
