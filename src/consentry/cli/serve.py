"""``consentry serve``: the HTTP API and the page under uvicorn."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from consentry.cli.common import fail, load_settings, open_container, shown_url

if TYPE_CHECKING:
    from fastapi import FastAPI

# The server process's ASGI factories (settings from the environment).
APP_FACTORY = "consentry.asgi:create"
DEMO_APP_FACTORY = "consentry.cli.serve:demo_app"


def demo_app() -> FastAPI:
    """``consentry.asgi:create`` with the demo's wiring (its partners get the webhooks)."""
    from consentry.app import create_app
    from consentry.config import Settings
    from consentry.demo.boot import boot as demo_boot
    from consentry.events.embedded import with_relay

    settings = Settings()
    settings.check_secure()
    container = demo_boot(settings)
    return with_relay(create_app(container), container)  # CONSENTRY_RELAY=embedded


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option(help="Allow the demo signing secret and demo login.")
    ] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (uvicorn).")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request (uvicorn).")] = True,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            envvar="CONSENTRY_FORWARDED_ALLOW_IPS",
            help="Addresses of the TLS proxies in front (comma-separated, or '*'): from them, "
            "X-Forwarded-Proto and X-Forwarded-For are believed (the session cookie is then "
            "Secure behind https, and rate limits see the client's address). Unset: ignored.",
        ),
    ] = None,
    shutdown_timeout: Annotated[
        int,
        typer.Option(
            help="Seconds to let requests in flight finish on shutdown; open change-feed long "
            "polls are then cut (followers reconnect and resume from their cursor)."
        ),
    ] = 5,
) -> None:
    """Run the HTTP API (and page) with uvicorn."""
    import uvicorn

    from consentry.bootstrap import bootstrap
    from consentry.config import InsecureSettings
    from consentry.demo.boot import boot as demo_boot
    from consentry.http.protocol import BoundedHttpToolsProtocol

    settings = load_settings(demo=demo or None)
    try:
        settings.check_secure()
    except InsecureSettings as exc:
        raise fail(str(exc), 2) from exc
    # Fail fast on a bad catalogue or database, and migrate once.
    open_container(settings, demo_boot if settings.demo else bootstrap)
    if demo:
        os.environ["CONSENTRY_DEMO"] = "true"
    typer.echo(f"consentry serving on http://{host}:{port} ({shown_url(settings)})", err=True)
    uvicorn.run(
        DEMO_APP_FACTORY if settings.demo else APP_FACTORY,
        host=host,
        port=port,
        workers=workers,
        factory=True,
        log_level="info",
        access_log=access_log,
        http=BoundedHttpToolsProtocol,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=shutdown_timeout,
    )
