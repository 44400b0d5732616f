"""``consentry report`` and ``consentry verify-site``: evidence for a regulator."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from consentry.cli.common import fail, load_settings, open_container


def _day(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise fail(
            f"{option} {value!r} is not a date (YYYY-MM-DD) or ISO 8601 datetime", 2
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def report(
    subject: Annotated[
        str | None, typer.Option(help="The subject whose evidence to gather.")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="Period pack: first day (YYYY-MM-DD, UTC) or datetime."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Period pack: day after the last (excluded), or datetime."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write the HTML here (default: standard output).")
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option(help="The ledger reference of an erased customer's chain (from the erasure)."),
    ] = None,
    site_checks: Annotated[
        Path | None,
        typer.Option(help="Period pack: folder of verify-site reports (default: site-checks)."),
    ] = None,
) -> None:
    """Evidence pack for a regulator, as HTML: one subject's (--subject: what was shown and
    chosen, when, from where, chain verified) or a period's (--from/--to: what the ledger
    recorded, counted, with the notices shown; names no customer)."""
    from consentry.reports.evidence import erased_report, period_report, subject_report

    if ref is not None:
        if subject is not None or start or end:
            raise fail("give --ref alone", 2)
        container = open_container(load_settings())
        try:
            page = erased_report(container, ref)
        finally:
            container.close()
        if page is None:
            raise fail(f"no ledger chain with reference {ref!r}", 1)
        if output is None:
            typer.echo(page)
        else:
            output.write_text(page, encoding="utf-8")
            typer.echo(f"evidence pack for chain {ref[:12]}… written to {output}", err=True)
        return
    since, until = _day(start, "--from"), _day(end, "--to")
    if subject is not None and (since or until):
        raise fail("give either --subject or --from/--to, not both", 2)
    if subject is None and (since is None or until is None):
        raise fail("give --subject SID, or a period with both --from and --to", 2)
    if since is not None and until is not None and since >= until:
        raise fail("--from must be before --to", 2)
    container = open_container(load_settings())
    try:
        if subject is not None:
            html, what = subject_report(container, subject), f"for {subject!r}"
        else:
            assert since is not None and until is not None
            html = period_report(container, since, until, site_checks)
            what = f"for {since.date()} to {until.date()}"
    finally:
        container.close()
    if output is None:
        typer.echo(html)
    else:
        output.write_text(html, encoding="utf-8")
        typer.echo(f"evidence pack {what} written to {output}", err=True)


def verify_site_command(
    url: Annotated[str, typer.Argument(help="A page of the shop (others are found from it).")],
    output: Annotated[
        Path | None,
        typer.Option(help="Where to write the signed report (default: site-checks/<time>.json)."),
    ] = None,
    pages: Annotated[int, typer.Option(min=1, max=20, help="Pages to visit per state.")] = 4,
) -> None:
    """Drive Chromium through each consent state on URL; exit 1 listing every request, cookie
    or storage write the state does not allow (and every third-party domain no recipient
    claims). Writes a report signed with the receipt key, which `consentry report` includes."""
    from consentry.storefront.cli import verify_site_cli

    verify_site_cli(load_settings(), url, output, pages)
