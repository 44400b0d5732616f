"""``consentry relay``: the outbox relay as its own process (any number on PostgreSQL)."""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the rest is imported when the command runs (``consentry --help`` is light)
    from consentry.events.relay import Relay, RelayStats


def _say(message: str) -> None:
    typer.echo(message, err=True)


class _Progress:
    """Rows published per second, on stderr, once a second while rows flow."""

    def __init__(self) -> None:
        self.last = 0
        self.at = time.monotonic()

    def __call__(self, stats: RelayStats) -> None:
        now = time.monotonic()
        rate = (stats.published - self.last) / max(now - self.at, 1e-9)
        if stats.published != self.last:
            _say(f"relay: {rate:,.0f} rows/s ({stats.published:,} published)")
        self.last, self.at = stats.published, now


def relay_command(
    nats: Annotated[
        str | None,
        typer.Option("--nats", help="NATS URL (default: CONSENTRY_NATS_URL; none: HTTP feed)."),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Publish what is pending, send due webhooks, exit.")
    ] = False,
) -> None:
    """Publish the outbox (NATS JetStream or the HTTP change feed) and deliver webhooks."""
    from sqlalchemy.exc import SQLAlchemyError

    from consentry.bootstrap import bootstrap
    from consentry.catalogue_io import CatalogueError
    from consentry.config import Settings
    from consentry.events.embedded import relay_config
    from consentry.events.publisher import NatsPublisher, PublishError
    from consentry.events.relay import build_relay, single_relay_lock
    from consentry.storage.backend import RelayBusy

    settings = Settings()
    try:
        container = bootstrap(settings)
    except CatalogueError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from exc
    except SQLAlchemyError as exc:
        _say(f"error: cannot use the database: {exc.__cause__ or exc}")
        raise typer.Exit(1) from exc
    try:
        lock = single_relay_lock(container.db)
    except RelayBusy as exc:
        container.close()
        _say(f"error: {exc} (SQLite takes one relay; is `consentry serve` running one?)")
        raise typer.Exit(1) from exc
    relay: Relay | None = None
    try:
        relay = build_relay(container.db, container.catalogue, relay_config(settings, nats))
        if isinstance(relay.publisher, NatsPublisher):
            relay.publisher.connect()  # fail now, not on the first row
        _say(f"relay: publishing to {relay.publisher.target}")
        if once:
            started = time.monotonic()
            total = relay.drain()
            elapsed = time.monotonic() - started
            _say(f"relay: {total:,} rows published in {elapsed:.2f} s")
            if relay.webhooks is not None:
                s = relay.webhooks.stats
                counts = f"{s.acknowledged} acknowledged, {s.failed} to retry, {s.dead} dead"
                _say(f"relay: webhooks {counts}")
            return
        stop = relay.stop

        def _on_signal(signum: int, frame: FrameType | None) -> None:
            stop()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        relay.run(progress=_Progress())
        _say(f"relay: stopped ({relay.stats.published:,} rows published)")
    except PublishError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from exc
    finally:
        if relay is not None:
            relay.close()
        if lock is not None:
            lock.close()
        container.close()
        sys.stderr.flush()
