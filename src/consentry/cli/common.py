"""What every command shares: its settings, the wired services, and how it fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

# Each command imports what it uses when it runs: ``consentry --help`` and the light commands
# start without the database layer, the web framework or the broker client.
if TYPE_CHECKING:
    from consentry.bootstrap import Container
    from consentry.config import Settings


def shown_url(settings: Settings) -> str:
    from consentry.storage.database import display_url

    return display_url(settings.database_url)  # never the password


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_settings(**overrides: object) -> Settings:
    from consentry.config import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


def open_container(
    settings: Settings, boot: Callable[[Settings], Container] | None = None
) -> Container:
    """The services as ``boot`` (``bootstrap`` unless given) wires them; a bad catalogue
    exits 2, an unusable database 1."""
    from sqlalchemy.exc import SQLAlchemyError

    from consentry.bootstrap import bootstrap
    from consentry.catalogue_io import CatalogueError

    try:
        return (boot or bootstrap)(settings)
    except CatalogueError as exc:
        raise fail(str(exc), 2) from exc
    except SQLAlchemyError as exc:
        raise fail(
            f"cannot use the database {shown_url(settings)!r}: {exc.__cause__ or exc}"
        ) from exc
