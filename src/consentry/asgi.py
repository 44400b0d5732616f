"""ASGI factory for uvicorn: ``uvicorn --factory consentry.asgi:create`` (settings from env)."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from consentry.app import create_app
from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.events.embedded import with_relay
from consentry.services.checkpoint_schedule import with_checkpoints


def create() -> FastAPI:
    settings = Settings()
    settings.check_secure()
    container = bootstrap(settings)
    app = with_relay(create_app(container), container)  # CONSENTRY_RELAY=embedded
    app = with_checkpoints(app, settings, container.db)  # CONSENTRY_CHECKPOINT_INTERVAL
    settle_heap()
    return app


def settle_heap() -> None:
    """Keep what the process built to serve (catalogue, tables, routes: ~120,000 objects,
    alive as long as it) out of the cyclic garbage collector's full passes, which otherwise
    stop every thread for ~0.1 s, a few times a minute under load (the tail of the write
    acknowledgements: docs/benchmarks.md, ledger writes)."""
    gc.collect()
    gc.freeze()
