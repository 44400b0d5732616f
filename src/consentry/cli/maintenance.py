"""Housekeeping: ``consentry catalog validate``, ``outbox prune``, ``uses purge`` and
``lifecycle auto-reset``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from consentry.cli.common import fail, load_settings, open_container

catalog_app = typer.Typer(help="The permissions catalogue.", no_args_is_help=True)
uses_app = typer.Typer(help="Access reports (who used the data).", no_args_is_help=True)
lifecycle_app = typer.Typer(
    help="The life of a grant: auto-reset of unused ones.", no_args_is_help=True
)
outbox_app = typer.Typer(help="The change feed's outbox.", no_args_is_help=True)


@catalog_app.command("validate")
def catalog_validate(file: Annotated[Path, typer.Argument(help="Catalogue YAML file.")]) -> None:
    """Check a catalogue file; each problem is printed with its line."""
    from consentry.catalogue_io import CatalogueError, load_catalogue

    try:
        cat = load_catalogue(file)
    except CatalogueError as exc:
        raise fail(str(exc), 1) from exc
    typer.echo(
        f"{file}: valid (version {cat.catalogue_version}, {len(cat.permissions)} permissions, "
        f"{len(cat.device_permissions)} device permissions, locales {', '.join(cat.locales)})"
    )


@outbox_app.command("prune")
def outbox_prune(
    older_than_days: Annotated[
        int, typer.Option(min=1, help="Prune published changes older than this many days.")
    ] = 7,
    batch: Annotated[int, typer.Option(min=100, help="Rows per transaction.")] = 10_000,
) -> None:
    """Delete published changes from the outbox (oldest first). Feed followers whose cursor is
    older get 410 and reload the snapshot; unpublished changes and the newest are kept."""
    from datetime import timedelta

    from consentry.storage.outbox_prune import prune

    container = open_container(load_settings())
    now = datetime.now(UTC)

    def progress(removed: int, floor: int) -> None:
        typer.echo(f"  {removed} pruned so far (up to position {floor})", err=True)

    try:
        removed, floor = prune(
            container.db, now - timedelta(days=older_than_days), now, batch, progress
        )
    finally:
        container.close()
    if removed:
        typer.echo(
            f"{removed} published change(s) older than {older_than_days} day(s) pruned; feed "
            f"cursors below position {floor} now answer 410 (followers reload the snapshot)"
        )
    else:
        typer.echo(f"nothing to prune (the feed keeps everything after position {floor})")


@uses_app.command("purge")
def uses_purge() -> None:
    """Delete access reports older than the retention period (13 months)."""
    container = open_container(load_settings())
    try:
        removed = container.uses.purge()
    finally:
        container.close()
    typer.echo(f"{removed} access report(s) older than the retention period deleted")


@lifecycle_app.command("auto-reset")
def lifecycle_auto_reset(
    days: Annotated[int, typer.Option(min=1, help="Unused for this many days.")] = 365,
) -> None:
    """Withdraw consent grants not used for DAYS (each reset is a ledger event, source system)."""
    from datetime import timedelta

    container = open_container(load_settings())
    try:
        reset = container.uses.auto_reset(timedelta(days=days))
    finally:
        container.close()
    typer.echo(f"{reset} unused grant(s) reset to denied")
