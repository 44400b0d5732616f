"""The ASGI application: ``create_app(container)`` wires routes, errors and metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request, Response

from consentry import __version__
from consentry.api import access, gpc, problems, ratelimit, security
from consentry.api.routes import (
    catalog,
    changes,
    decisions,
    deliveries,
    ops,
    receipts,
    rights,
    signals,
    subjects,
    uses,
    wellknown,
)
from consentry.bootstrap import Container
from consentry.web import routes as web_routes

MAX_BODY = 1_000_000


def _route_name(request: Request) -> str:
    # The route template, not the raw path, so subject ids never become metric labels.
    return str(getattr(request.scope.get("route"), "path", "unmatched"))


def create_app(container: Container) -> FastAPI:
    app = FastAPI(
        title="consentry",
        version=__version__,
        description="Permissions center: catalogue, consent ledger and decision point.",
        dependencies=[Depends(gpc.honour_signal)],
    )
    app.state.container = container
    problems.install(app)
    access.install(app)
    for module in (catalog, subjects, rights, uses, decisions, changes, ops):
        app.include_router(module.router)
    for module in (signals, receipts, wellknown):
        app.include_router(module.router)
    app.include_router(deliveries.router)
    app.include_router(web_routes.router)
    app.mount(web_routes.STATIC_PREFIX, web_routes.static_files(), name="static")

    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return problems.problem_response(
                413, f"request body over {MAX_BODY} bytes", code="body_too_large"
            )
        started = time.perf_counter()
        response = await call_next(request)
        route = _route_name(request)
        container.metrics.latency.labels(request.method, route).observe(
            time.perf_counter() - started
        )
        container.metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        return response

    ratelimit.install(app, container.settings)  # inside the headers: a 429 gets them too
    security.install(app, container.settings)
    return app
