"""``consentry import FILE``: consent records from another platform into the ledger."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Annotated

import typer

from consentry.cli.common import fail, load_settings, open_container


class Bar:
    """A one-line progress bar on a terminal (rate and ETA), nothing elsewhere."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.live = out.isatty()
        self.last = 0.0

    def __call__(self, progress: object) -> None:
        from consentry.services.importing import Progress

        assert isinstance(progress, Progress)
        now = time.monotonic()
        done = progress.done_bytes >= progress.total_bytes
        if not self.live or (now - self.last < 0.2 and not done):
            return
        self.last = now
        share = progress.done_bytes / progress.total_bytes if progress.total_bytes else 1.0
        spent = now - progress.started
        rate = progress.records / spent if spent > 0 else 0.0
        eta = spent * (1 - share) / share if share > 0 else 0.0
        filled = int(share * 30)
        self.out.write(
            f"\r{progress.phase:>9} [{'#' * filled}{' ' * (30 - filled)}] {share:4.0%} "
            f"{progress.records:,} records  {rate:,.0f}/s  ETA {_clock(eta)} "
        )
        if done:
            self.out.write("\n")
        self.out.flush()


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def import_command(
    file: Annotated[Path, typer.Argument(help="JSON Lines or CSV file of consent records.")],
    source: Annotated[
        str | None,
        typer.Option(
            help="Where the records come from, for records without a source field (events "
            "are marked import:SOURCE). Default: the mapping's, else 'file'."
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="jsonl or csv (default: from the file's extension)."),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(help="A mapping file (YAML) from another platform's export (docs/import.md)."),
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(help="Import the valid records and write the bad lines to a rejects file."),
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where --skip-invalid writes bad lines (default: FILE.rejects.jsonl)."),
    ] = None,
    batch: Annotated[
        int, typer.Option(min=1, max=100_000, help="Records per transaction.")
    ] = 10_000,
    writers: Annotated[
        int,
        typer.Option(
            min=0,
            max=8,
            help="Connections writing at once on PostgreSQL, each for a share of the customers "
            "(0: 2). SQLite has one writer.",
        ),
    ] = 0,
) -> None:
    """Import consent records (docs/import.md): checked against the catalogue, written as
    chained events with their original time, notice version and source. Re-running a file
    imports nothing twice; an interrupted import resumes when run again."""
    from sqlalchemy.exc import SQLAlchemyError

    from consentry.domain.imports import InvalidRecord, check_source
    from consentry.services.import_lines import format_of
    from consentry.services.import_mapping import MappingError, load_mapping
    from consentry.services.importing import Importer

    if not file.is_file():
        raise fail(f"no such file: {file}", 2)
    expand = None
    default_source = "file"
    if mapping is not None:
        try:
            loaded = load_mapping(mapping)
        except MappingError as exc:
            raise fail(str(exc), 2) from exc
        expand, default_source = loaded.expand, loaded.source
        fmt = fmt or loaded.format
    source = source or default_source
    try:
        check_source(source)
        form = format_of(file, fmt)
    except (InvalidRecord, ValueError) as exc:
        raise fail(str(exc), 2) from exc
    container = open_container(load_settings())
    importer = Importer(container.db, dict(container.index.permissions), writers=writers)
    bar = Bar(sys.stderr)
    try:
        with ExitStack() as stack:
            out = None
            if skip_invalid:
                where = rejects or file.with_name(file.name + ".rejects.jsonl")
                out = stack.enter_context(where.open("w", encoding="utf-8"))
            summary = importer.run(
                file,
                fmt=form,
                source=source,
                skip_invalid=skip_invalid,
                rejects=out,
                expand=expand,
                batch=batch,
                progress=bar,
            )
    except SQLAlchemyError as exc:
        raise fail(f"the database refused a batch: {exc.__cause__ or exc}") from exc
    finally:
        container.close()
    for error in summary.errors:
        typer.echo(f"{file}:{error.line}: {error.reason}", err=True)
    if summary.rejected > len(summary.errors):
        typer.echo(f"… and {summary.rejected - len(summary.errors)} more", err=True)
    if not summary.written:
        raise fail(
            f"{summary.rejected} bad line(s): nothing imported (fix them, or import the rest "
            "with --skip-invalid)",
            1,
        )
    rate = summary.records / summary.seconds if summary.seconds else 0.0
    typer.echo(
        f"{summary.imported} record(s) imported, {summary.present} already in the ledger, "
        f"{summary.rejected} rejected; {summary.records} valid record(s) read in "
        f"{summary.seconds:.1f} s ({rate:,.0f}/s)"
    )
    if skip_invalid and summary.rejected:
        typer.echo(f"rejected lines written to {rejects or file.name + '.rejects.jsonl'}", err=True)
