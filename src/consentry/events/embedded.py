"""Running the relay inside ``consentry serve`` (``CONSENTRY_RELAY=embedded``, the default on
SQLite), and the settings that shape any relay."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import IO

from fastapi import FastAPI

from consentry.bootstrap import Container
from consentry.config import Settings
from consentry.events.relay import Relay, RelayConfig, build_relay, single_relay_lock
from consentry.services.lifespan import running_beside
from consentry.storage.backend import RelayBusy
from consentry.storage.database import Database

log = logging.getLogger("consentry.relay")


def relay_config(settings: Settings, nats_url: str | None = None) -> RelayConfig:
    return RelayConfig(
        nats_url=nats_url or settings.nats_url,
        stream=settings.nats_stream,
        subject_prefix=settings.nats_subject_prefix,
        shards=settings.shards,
        webhook_timeout=settings.webhook_timeout,
        webhook_max_attempts=settings.webhook_max_attempts,
        webhook_backoff=settings.webhook_backoff,
        webhook_workers=settings.webhook_workers,
    )


def embedded_wanted(settings: Settings, db: Database) -> bool:
    if settings.relay is None:
        return db.backend.in_process
    return settings.relay == "embedded"


class EmbeddedRelay:
    """The relay in a daemon thread of the API process, woken by this process's commits."""

    def __init__(self, relay: Relay, lock: IO[bytes] | None) -> None:
        self.relay = relay
        self._lock = lock
        self._thread = threading.Thread(target=relay.run, name="consentry-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.relay.stop()
        self._thread.join(timeout=10)
        self.relay.close()
        if self._lock is not None:
            self._lock.close()


def embedded_relay(container: Container) -> EmbeddedRelay | None:
    """The relay this API process should run, or None (disabled, or another process on the
    same SQLite file runs it, e.g. another uvicorn worker)."""
    if not embedded_wanted(container.settings, container.db):
        return None
    try:
        lock = single_relay_lock(container.db)
    except RelayBusy as exc:
        log.info("not starting the embedded relay: %s", exc)
        return None
    try:
        relay = build_relay(container.db, container.catalogue, relay_config(container.settings))
    except BaseException:
        if lock is not None:
            lock.close()
        raise
    listeners: list[Callable[[], object]] | None = getattr(container.db, "committed", None)
    if listeners is not None:
        listeners.append(relay.notify)
    return EmbeddedRelay(relay, lock)


def with_relay(app: FastAPI, container: Container) -> FastAPI:
    """Run the embedded relay (if wanted) for the application's lifetime."""

    def begin() -> EmbeddedRelay | None:
        embedded = embedded_relay(container)
        if embedded is not None:
            embedded.start()
            log.info("embedded relay publishing to %s", embedded.relay.publisher.target)
        return embedded

    return running_beside(app, begin)
