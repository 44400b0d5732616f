"""Health and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text

from consentry.http.deps import Admin, ContainerDep
from consentry.http.problems import Problem

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(container: ContainerDep) -> dict[str, str]:
    try:
        with container.db.read() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means "not healthy", not a 500
        raise Problem(503, f"database unavailable: {type(exc).__name__}", code="unhealthy") from exc
    return {"status": "ok", "database": container.db.dialect}


@router.get("/metrics", response_class=Response)
def metrics(_: Admin, container: ContainerDep) -> Response:
    body, content_type = container.metrics.render()
    return Response(body, media_type=content_type)
