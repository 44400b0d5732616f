"""``consentry db upgrade`` and ``consentry ledger checkpoint|verify``: the schema and the
ledger's integrity, on the database ``bootstrap`` wires (nothing else is built)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from consentry.cli.common import fail, load_settings, shown_url

if TYPE_CHECKING:
    from consentry.config import Settings
    from consentry.services.receipt_signing import ReceiptKeys

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
ledger_app = typer.Typer(help="The consent ledger.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to CONSENTRY_DATABASE_URL."""
    from sqlalchemy.exc import SQLAlchemyError

    from consentry.bootstrap import open_database
    from consentry.storage.migrate import current_revision, upgrade

    settings = load_settings()
    db = open_database(settings)
    try:
        upgrade(db)
        typer.echo(f"database at revision {current_revision(db)}")
    except SQLAlchemyError as exc:
        raise fail(f"cannot migrate {shown_url(settings)!r}: {exc.__cause__ or exc}") from exc
    finally:
        db.dispose()


def _verifying_keys(settings: Settings) -> ReceiptKeys:
    from consentry.services.receipt_signing import ReceiptKeyError, load_receipt_keys

    try:
        keys = load_receipt_keys(settings)
    except ReceiptKeyError as exc:
        raise fail(str(exc)) from exc
    return keys


@ledger_app.command("checkpoint")
def ledger_checkpoint(
    out: Annotated[
        Path | None,
        typer.Option(help="Also write every checkpoint line to this file (to copy off-site)."),
    ] = None,
) -> None:
    """Sign a checkpoint: a Merkle root over every chain's head, with the receipt key."""
    from sqlalchemy.exc import SQLAlchemyError

    from consentry.bootstrap import open_database
    from consentry.services import checkpoints

    settings = load_settings()
    keys = _verifying_keys(settings)
    db = open_database(settings)
    try:
        made = checkpoints.create(db, keys)
        lines = checkpoints.published(db) if out is not None else []
    except checkpoints.CheckpointInvalid as exc:
        raise fail(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise fail(f"cannot read {shown_url(settings)!r}: {exc.__cause__ or exc}") from exc
    finally:
        db.dispose()
    if out is not None:
        out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    typer.echo(f"checkpoint {made.number}: {made.tree_size} chain(s), root {made.root}")


@ledger_app.command("verify")
def ledger_verify(
    subject: Annotated[str | None, typer.Option(help="Verify one subject only.")] = None,
    checkpoints_file: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="A copy of the published checkpoints (one signed line each) to check against.",
        ),
    ] = None,
) -> None:
    """Recompute every hash chain, hold each to the newest signed checkpoints, replay it
    against the projection; exit 1 and name the first broken place on tampering."""
    from sqlalchemy.exc import SQLAlchemyError

    from consentry.bootstrap import open_database
    from consentry.services.ledger import verify

    settings = load_settings()
    keys = _verifying_keys(settings).verifying_keys() or None
    published = None
    if checkpoints_file is not None:
        try:
            text = checkpoints_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot read {checkpoints_file}: {exc.strerror}") from exc
        published = [line for line in text.splitlines() if line.strip()]
    db = open_database(settings)

    def progress(subjects: int, events: int) -> None:
        if subjects % 100_000 == 0:
            typer.echo(f"… {subjects} subject(s), {events} event(s)", err=True)

    try:
        result = verify(db, subject, keys=keys, published=published, progress=progress)
    except SQLAlchemyError as exc:
        raise fail(f"cannot read {shown_url(settings)!r}: {exc.__cause__ or exc}") from exc
    finally:
        db.dispose()
    if result.broken is not None:
        b = result.broken
        raise fail(
            f"ledger broken: subject {b.subject!r} event seq {b.seq} "
            f"(id {b.event_id or '-'}): {b.problem}",
            1,
        )
    if subject is not None and result.subjects == 0:
        raise fail(f"no ledger for subject {subject!r}", 1)
    against = f", against checkpoint {result.checkpoint}" if result.checkpoint else ""
    typer.echo(
        f"ledger ok: {result.subjects} subject(s), {result.events} event(s) verified{against}"
    )
