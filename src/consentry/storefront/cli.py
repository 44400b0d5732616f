"""``consentry verify-site``: the command around ``verify.verify_site`` (progress, report file,
exit status)."""

from __future__ import annotations

from pathlib import Path

import typer

from consentry.catalogue_io import CatalogueError, load_catalogue
from consentry.config import Settings
from consentry.services.receipt_signing import ReceiptKeyError, load_receipt_keys
from consentry.storefront.site_report import DEFAULT_DIR, signed_file
from consentry.storefront.verify import VerifyError, verify_site


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def verify_site_cli(settings: Settings, url: str, output: Path | None, pages: int) -> None:
    if not url.startswith(("http://", "https://")):
        raise _fail(f"{url!r} is not an http(s) URL", 2)
    try:
        catalogue = load_catalogue(settings.catalogue)
        keys = load_receipt_keys(settings)
    except (CatalogueError, ReceiptKeyError) as exc:
        raise _fail(str(exc), 2) from exc

    def progress(line: str) -> None:
        typer.echo(line, err=True)

    try:
        report = verify_site(url, catalogue, max_pages=pages, progress=progress)
    except VerifyError as exc:
        raise _fail(str(exc), 2) from exc
    data, signed = signed_file(report, keys)
    if output is None:
        output = DEFAULT_DIR / f"verify-site-{report['finished_at'].replace(':', '')}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    note = "signed with the receipt key" if signed else "UNSIGNED: no receipt signing key"
    typer.echo(f"report written to {output} ({note}); took {report['seconds']:.1f} s", err=True)
    for line in report["violations"]:
        typer.echo(line)
    for host in report["unmapped_domains"]:
        typer.echo(f"third-party domain {host} maps to no recipient in the catalogue")
    if report["violations"]:
        typer.echo(f"FAILED: {len(report['violations'])} violation(s) on {url}", err=True)
        raise typer.Exit(1)
    typer.echo(f"passed: nothing loaded or stored that its consent state does not allow on {url}")
