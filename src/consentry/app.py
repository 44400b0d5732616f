"""The ASGI application: ``create_app(container)`` composes the API (``api/``), the Permissions
page (``web/``) and the storefront's routes with the shared middleware, errors and metrics."""

from __future__ import annotations

import gc
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from consentry import __version__
from consentry.api import docs_pages
from consentry.api.fastpaths import DecisionFastPath, PermissionPutFastPath
from consentry.api.routes import (
    catalog,
    changes,
    decisions,
    deliveries,
    ops,
    preferences,
    receipts,
    rights,
    signals,
    subjects,
    uses,
    wellknown,
)
from consentry.bootstrap import Container
from consentry.demo import page as demo_page
from consentry.demo import shop as demo_shop
from consentry.http import access, gpc, problems, ratelimit, security
from consentry.http.limits import BodyLimit
from consentry.http.measure import Measure
from consentry.http.session import Signer
from consentry.storefront import routes as storefront_routes
from consentry.web import routes as web_routes


def _freeze_startup_objects() -> None:
    """Once per process, at the first request: move what exists then (modules, the app, its
    routes, the catalogue) out of the cyclic garbage collector's sight (``gc.freeze``). Its
    full collections then scan only what requests create; under load they otherwise stall
    the event loop for tens of milliseconds (the batch endpoint's p99)."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


class ConsentryAPI(FastAPI):
    """FastAPI with consentry's own middleware around it rather than inside its stack.

    Every request passes, outermost first: the security headers, the body limit (``limits``:
    before any credential is looked at), the rate limits, metrics (``measure``), the decision
    fast path, the fast path of a plain permission change (``api/fastpaths.py``), then
    FastAPI as usual (its error handling,
    exception handlers, routing, dependencies). The decision endpoints' and a plain PUT of a
    permission's common case so skip FastAPI's per-request layers altogether; an error FastAPI
    answers (a 500 included) still gets the headers and is counted."""

    def __init__(self, container: Container, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._consentry: ASGIApp | None = None
        self._container = container
        self.fast_path: DecisionFastPath | None = None
        self.put_path: PermissionPutFastPath | None = None

    def _outer(self) -> ASGIApp:
        settings = self._container.settings
        inner: ASGIApp = partial(FastAPI.__call__, self)
        inner = self.put_path = PermissionPutFastPath(inner, self._container, self)
        fast = self.fast_path = DecisionFastPath(inner, self._container, self)
        chain: ASGIApp = Measure(fast, self._container.metrics)
        chain = ratelimit.wrap(chain, self._container, self.state.web_signer)
        return security.wrap(BodyLimit(chain), settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outer = self._consentry
        if outer is None:
            outer = self._consentry = self._outer()
            _freeze_startup_objects()
        await outer(scope, receive, send)


def create_app(container: Container) -> FastAPI:
    app = ConsentryAPI(
        container,
        title="consentry",
        version=__version__,
        description="Permissions center: catalogue, consent ledger and decision point.",
        dependencies=[Depends(gpc.honour_signal)],
        # No redirect from /path/ to /path: Starlette builds its Location from the Host
        # header, which the client chooses (an open redirect through a spoofed Host).
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
    )
    docs_pages.install(app)
    app.state.container = container
    # The page's cookie signer, shared by the page and the rate limits (which tell a valid
    # session from a forged one).
    app.state.web_signer = Signer(container.settings.jwt_secret_value())
    problems.install(app)
    access.install(app)
    for module in (catalog, subjects, rights, uses, decisions, changes, ops):
        app.include_router(module.router)
    for module in (signals, receipts, wellknown, preferences):
        app.include_router(module.router)
    app.include_router(deliveries.router)
    app.include_router(storefront_routes.router)
    app.include_router(demo_page.router)
    app.include_router(demo_shop.router)
    app.include_router(web_routes.router)
    app.mount(web_routes.STATIC_PREFIX, web_routes.static_files(), name="static")

    security.install_log_filter()
    return app
