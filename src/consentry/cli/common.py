"""What every command shares: its settings, the wired services, and how it fails."""

from __future__ import annotations

from collections.abc import Callable

import typer
from sqlalchemy.exc import SQLAlchemyError

from consentry.bootstrap import Container, bootstrap
from consentry.catalogue_io import CatalogueError
from consentry.config import Settings
from consentry.storage.database import display_url


def shown_url(settings: Settings) -> str:
    return display_url(settings.database_url)  # never the password


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_settings(**overrides: object) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


def open_container(
    settings: Settings, boot: Callable[[Settings], Container] = bootstrap
) -> Container:
    """The services as ``boot`` wires them; a bad catalogue exits 2, an unusable database 1."""
    try:
        return boot(settings)
    except CatalogueError as exc:
        raise fail(str(exc), 2) from exc
    except SQLAlchemyError as exc:
        raise fail(
            f"cannot use the database {shown_url(settings)!r}: {exc.__cause__ or exc}"
        ) from exc
