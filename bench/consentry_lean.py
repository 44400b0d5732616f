"""Diagnostic peer for bench/http_decisions.py: consentry's decision router alone.

The same container, replica, key check and route code as ``consentry.asgi:create``, without
the app-wide parts every consentry route pays for (the metrics middleware, the GPC
dependency, the page and other routers). The gap between this row and "consentry" is what
those cost on the decision path.
"""

from __future__ import annotations

from fastapi import FastAPI

from consentry.api.routes import decisions
from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.http import problems


def create() -> FastAPI:
    app = FastAPI(title="consentry decisions only")
    app.state.container = bootstrap(Settings())
    problems.install(app)
    app.include_router(decisions.router)
    return app
