"""ASGI factory for uvicorn: ``uvicorn --factory consentry.asgi:create`` (settings from env)."""

from __future__ import annotations

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
    return with_checkpoints(app, settings, container.db)  # CONSENTRY_CHECKPOINT_INTERVAL
