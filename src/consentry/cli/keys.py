"""``consentry keys create|list|revoke`` and ``consentry token``: service keys, subject tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from consentry.cli.common import fail, load_settings, open_container
from consentry.scopes import Scope

keys_app = typer.Typer(help="Service API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help="Scope to grant; repeat for several: "
            + ", ".join(s.value for s in Scope)
            + " (uses:write: report uses of data, POST /v1/uses).",
        ),
    ],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
) -> None:
    """Create a service API key; prints only the key on stdout (shown once)."""
    container = open_container(load_settings())
    try:
        secret = container.keys.create(scope, name)
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    finally:
        container.close()
    typer.echo(secret)


@keys_app.command("list")
def keys_list() -> None:
    """List service API keys: id, name, scopes, created, revoked (secrets are never stored)."""
    container = open_container(load_settings())
    try:
        records = container.keys.records()
    finally:
        container.close()
    if not records:
        typer.echo("no service key yet: consentry keys create --scope decide", err=True)
    for r in records:
        revoked = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
        scopes = ",".join(sorted(r.scopes))
        typer.echo(
            f"{r.key_id}\t{r.name}\t{scopes}\tcreated {r.created_at:%Y-%m-%d %H:%M}\t{revoked}"
        )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see consentry keys list).")],
) -> None:
    """Revoke a service API key: requests with it are refused from now on."""
    container = open_container(load_settings())
    try:
        record = container.keys.revoke(key_id)
    except KeyError as exc:
        raise fail(f"no service key with id {key_id!r} (see consentry keys list)", 1) from exc
    finally:
        container.close()
    assert record.revoked_at is not None
    typer.echo(f"key {record.key_id} ({record.name}) revoked at {record.revoked_at.isoformat()}")
    typer.echo(
        "running servers refuse it at once, except on the decision and change-feed endpoints, "
        "which remember verified keys for up to 5 seconds",
        err=True,
    )


def token(
    subject: Annotated[str, typer.Argument(help="Subject id (the token's sub).")],
    hours: Annotated[float, typer.Option(help="Validity in hours.")] = 12.0,
) -> None:
    """Print a subject JWT signed with the configured secret (demo and development use)."""
    from datetime import timedelta

    from consentry.services.tokens import TokenService

    settings = load_settings()
    if settings.jwt_secret is None and not settings.demo:
        raise fail("set CONSENTRY_JWT_SECRET (or CONSENTRY_DEMO=true for the demo secret)", 2)
    if hours * 3600 > settings.jwt_max_lifetime:
        raise fail(
            f"--hours {hours:g} is past the longest lifetime the server accepts "
            f"(CONSENTRY_JWT_MAX_LIFETIME={settings.jwt_max_lifetime} s)",
            2,
        )
    try:
        typer.echo(TokenService(settings).issue(subject, timedelta(hours=hours)))
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
