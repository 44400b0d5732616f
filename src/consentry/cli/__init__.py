"""The ``consentry`` command line: serve, demo, keys, tokens, catalogue, database, ledger."""

from __future__ import annotations

import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer
from sqlalchemy.exc import SQLAlchemyError

from consentry.bootstrap import Container, bootstrap
from consentry.catalogue_io import CatalogueError, load_catalogue
from consentry.cli_import import import_command
from consentry.cli_standards import gpp_app, receipt_app, tcf_app
from consentry.config import InsecureSettings, Settings
from consentry.demo_partners import SECRET_ENV, Outcome, PartnerInbox, PartnerReceiver, partners
from consentry.events.command import relay_command
from consentry.scopes import Scope
from consentry.storage.database import display_url

if TYPE_CHECKING:
    from consentry.services.receipt_signing import ReceiptKeys

app = typer.Typer(
    help="consentry: permissions center for e-commerce (catalogue, ledger, decision point).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Service API keys.", no_args_is_help=True)
catalog_app = typer.Typer(help="The permissions catalogue.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
ledger_app = typer.Typer(help="The consent ledger.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(catalog_app, name="catalog")
app.add_typer(db_app, name="db")
app.add_typer(ledger_app, name="ledger")
app.command("relay")(relay_command)
app.command("import")(import_command)
app.add_typer(tcf_app, name="tcf")
app.add_typer(gpp_app, name="gpp")
app.add_typer(receipt_app, name="receipt")


def _db(settings: Settings) -> str:
    return display_url(settings.database_url)  # never the password


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings(**overrides: object) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


def _container(settings: Settings) -> Container:
    try:
        return bootstrap(settings)
    except CatalogueError as exc:
        raise fail(str(exc), 2) from exc
    except SQLAlchemyError as exc:
        raise fail(f"cannot use the database {_db(settings)!r}: {exc.__cause__ or exc}") from exc


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option(help="Allow the demo signing secret and demo login.")
    ] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (uvicorn).")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request (uvicorn).")] = True,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            envvar="CONSENTRY_FORWARDED_ALLOW_IPS",
            help="Addresses of the TLS proxies in front (comma-separated, or '*'): from them, "
            "X-Forwarded-Proto and X-Forwarded-For are believed (the session cookie is then "
            "Secure behind https, and rate limits see the client's address). Unset: ignored.",
        ),
    ] = None,
    shutdown_timeout: Annotated[
        int,
        typer.Option(
            help="Seconds to let requests in flight finish on shutdown; open change-feed long "
            "polls are then cut (followers reconnect and resume from their cursor)."
        ),
    ] = 5,
) -> None:
    """Run the HTTP API (and page) with uvicorn."""
    import uvicorn

    from consentry.api.protocol import BoundedHttpToolsProtocol

    settings = _settings(demo=demo or None)
    try:
        settings.check_secure()
    except InsecureSettings as exc:
        raise fail(str(exc), 2) from exc
    _container(settings)  # fail fast on a bad catalogue or database, and migrate once
    if demo:
        os.environ["CONSENTRY_DEMO"] = "true"
    typer.echo(f"consentry serving on http://{host}:{port} ({_db(settings)})", err=True)
    uvicorn.run(
        "consentry.asgi:create",
        host=host,
        port=port,
        workers=workers,
        factory=True,
        log_level="info",
        access_log=access_log,
        http=BoundedHttpToolsProtocol,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=shutdown_timeout,
    )


def reset_demo_database(database: Path) -> None:
    """Delete the demo's SQLite file and its journal files (WAL, shared memory)."""
    removed = []
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise fail(f"cannot delete {path}: {exc}") from exc
        removed.append(str(path))
    typer.echo(f"Reset: deleted {', '.join(removed)}" if removed else "Reset: no demo database yet")


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database: Annotated[Path, typer.Option(help="SQLite file for the demo.")] = Path(
        "consentry-demo.db"
    ),
    partners_port: Annotated[
        int | None,
        typer.Option(help="Port of the demo partners' webhook receiver (default: port + 1)."),
    ] = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset", help="Start afresh: delete the demo database first (customers reseeded)."
        ),
    ] = False,
) -> None:
    """Start a demo: SQLite file, demo catalogue, demo customers; prints URLs and a service key.
    Beside the server: simulated services that ask before using data, and a receiver where the
    catalogue's partners get their signed opt-outs."""
    from consentry.services.demo import seed

    if reset:
        reset_demo_database(database)

    url = f"sqlite:///{database}"
    os.environ["CONSENTRY_DATABASE_URL"] = url
    os.environ["CONSENTRY_DEMO"] = "true"
    secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
    os.environ[SECRET_ENV] = secret  # the server signs with it, the partners check with it
    container = _container(_settings(database_url=url, demo=True))
    names = partners(container.catalogue)

    def announce(outcome: Outcome) -> None:
        typer.echo(f"[partner {outcome.recipient}] {outcome.describe()}")

    try:
        receiver = PartnerReceiver(
            PartnerInbox(secret, names),
            port + 1 if partners_port is None else partners_port,
            on_outcome=announce,
        )
    except (OSError, OverflowError) as exc:
        container.close()
        message = f"cannot start the demo partners' receiver: {exc} (see --partners-port)"
        raise fail(message) from exc
    os.environ["CONSENTRY_DEMO_PARTNERS_URL"] = receiver.url  # the server's catalogue points here
    customers = seed(container)
    key = container.keys.create(["decide", "subjects:read", "subjects:write"], name="demo")
    base = f"http://127.0.0.1:{port}"
    typer.echo(f"Demo database: {database}")
    typer.echo(f"Permissions page: {base}/demo/login   (demo customers: {', '.join(customers)})")
    typer.echo(f"API docs:         {base}/docs")
    typer.echo(f"Service key:      {key}")
    typer.echo(
        f"Try: curl -H 'Authorization: Bearer {key}' {base}/v1/subjects/{customers[0]}/permissions"
    )
    typer.echo(
        f"Demo shop:        {base}/demo/shop   (tags served by the partners' port as "
        f"http://<partner>.localhost:{urlsplit(receiver.url).port}; with two mistakes: "
        f"{base}/demo/broken-shop/ - try consentry verify-site on both)"
    )
    typer.echo(
        f"Partners' inbox:  {receiver.url}/   (the signed opt-outs the {len(names)} partners "
        "received: withdraw a sharing permission on the page to send one)"
    )
    from consentry.demo_services import DEMO_SERVICES, SimulatedServices

    service_keys = {
        s.name: container.keys.create(["decide", "uses:write"], name=s.name) for s in DEMO_SERVICES
    }
    simulated = SimulatedServices(base, container.catalogue, service_keys, customers)
    typer.echo(
        f"Simulated services ({', '.join(simulated.uses)}) check consent through the SDK and "
        f"report their uses every {simulated.every:g} s: see 'Who used my data' on the page."
    )
    container.close()
    receiver.start()
    simulated.start()
    try:
        # No access log: the simulated services' feed polls would drown everything else.
        serve(
            host="127.0.0.1",
            port=port,
            demo=True,
            workers=1,
            access_log=False,
            shutdown_timeout=2,
        )
    finally:
        simulated.stop()
        receiver.stop()


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
    container = _container(_settings())
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
    container = _container(_settings())
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
    container = _container(_settings())
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


@app.command()
def token(
    subject: Annotated[str, typer.Argument(help="Subject id (the token's sub).")],
    hours: Annotated[float, typer.Option(help="Validity in hours.")] = 12.0,
) -> None:
    """Print a subject JWT signed with the configured secret (demo and development use)."""
    from datetime import timedelta

    from consentry.services.tokens import TokenService

    settings = _settings()
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


@catalog_app.command("validate")
def catalog_validate(file: Annotated[Path, typer.Argument(help="Catalogue YAML file.")]) -> None:
    """Check a catalogue file; each problem is printed with its line."""
    try:
        cat = load_catalogue(file)
    except CatalogueError as exc:
        raise fail(str(exc), 1) from exc
    typer.echo(
        f"{file}: valid (version {cat.catalogue_version}, {len(cat.permissions)} permissions, "
        f"{len(cat.device_permissions)} device permissions, locales {', '.join(cat.locales)})"
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to CONSENTRY_DATABASE_URL."""
    from consentry.storage.database import Database
    from consentry.storage.migrate import current_revision, upgrade

    settings = _settings()
    db = Database(settings.database_url)
    try:
        upgrade(db)
        typer.echo(f"database at revision {current_revision(db)}")
    except SQLAlchemyError as exc:
        raise fail(f"cannot migrate {_db(settings)!r}: {exc.__cause__ or exc}") from exc
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
    from consentry.services import checkpoints
    from consentry.storage.database import Database

    settings = _settings()
    keys = _verifying_keys(settings)
    db = Database(settings.database_url)
    try:
        made = checkpoints.create(db, keys)
        lines = checkpoints.published(db) if out is not None else []
    except checkpoints.CheckpointInvalid as exc:
        raise fail(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise fail(f"cannot read {_db(settings)!r}: {exc.__cause__ or exc}") from exc
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
    from consentry.services.ledger import verify
    from consentry.storage.database import Database

    settings = _settings()
    keys = _verifying_keys(settings).verifying_keys() or None
    published = None
    if checkpoints_file is not None:
        try:
            text = checkpoints_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot read {checkpoints_file}: {exc.strerror}") from exc
        published = [line for line in text.splitlines() if line.strip()]
    db = Database(settings.database_url)

    def progress(subjects: int, events: int) -> None:
        if subjects % 100_000 == 0:
            typer.echo(f"… {subjects} subject(s), {events} event(s)", err=True)

    try:
        result = verify(db, subject, keys=keys, published=published, progress=progress)
    except SQLAlchemyError as exc:
        raise fail(f"cannot read {_db(settings)!r}: {exc.__cause__ or exc}") from exc
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


@app.command()
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
        container = _container(_settings())
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
    container = _container(_settings())
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


@app.command("verify-site")
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

    verify_site_cli(_settings(), url, output, pages)


uses_app = typer.Typer(help="Access reports (who used the data).", no_args_is_help=True)
lifecycle_app = typer.Typer(
    help="The life of a grant: auto-reset of unused ones.", no_args_is_help=True
)
outbox_app = typer.Typer(help="The change feed's outbox.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")
app.add_typer(uses_app, name="uses")
app.add_typer(lifecycle_app, name="lifecycle")


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

    container = _container(_settings())
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
    container = _container(_settings())
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

    container = _container(_settings())
    try:
        reset = container.uses.auto_reset(timedelta(days=days))
    finally:
        container.close()
    typer.echo(f"{reset} unused grant(s) reset to denied")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
