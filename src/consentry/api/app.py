"""The ASGI application: ``create_app(container)`` wires routes, errors and metrics."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from consentry import __version__
from consentry.api import access, fastpath, gpc, problems, ratelimit, security
from consentry.api.measure import Measure
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

    # Innermost first: the decision fast path, then metrics and the body limit, then rate
    # limits, then the security headers (outermost, so a 413 or a 429 gets them too).
    fastpath.install(app, container)
    app.add_middleware(Measure, metrics=container.metrics)
    ratelimit.install(app, container.settings)
    security.install(app, container.settings)
    return app
