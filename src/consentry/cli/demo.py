"""``consentry demo``: the demo server with its customers, partners and simulated services."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from consentry.cli.common import fail, load_settings, open_container
from consentry.cli.serve import serve

if TYPE_CHECKING:
    from consentry.demo.partners import Outcome


def reset_demo_database(database: Path) -> None:
    """Delete the demo's SQLite file and its journal files (WAL, shared memory)."""
    from consentry.demo import launch

    try:
        removed = launch.delete_database(database)
    except OSError as exc:
        raise fail(f"cannot delete {exc.filename}: {exc}") from exc
    typer.echo(f"Reset: deleted {', '.join(removed)}" if removed else "Reset: no demo database yet")


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
    from consentry.demo import launch
    from consentry.demo.boot import boot
    from consentry.demo.partners import partners

    if reset:
        reset_demo_database(database)

    url = launch.use_database(database)
    secret = launch.partner_secret()
    container = open_container(load_settings(database_url=url, demo=True), boot)
    names = partners(container.catalogue)

    def announce(outcome: Outcome) -> None:
        typer.echo(f"[partner {outcome.recipient}] {outcome.describe()}")

    try:
        receiver = launch.open_receiver(
            secret, names, port + 1 if partners_port is None else partners_port, announce
        )
    except (OSError, OverflowError) as exc:
        container.close()
        message = f"cannot start the demo partners' receiver: {exc} (see --partners-port)"
        raise fail(message) from exc
    base = f"http://127.0.0.1:{port}"
    prepared = launch.prepare(container, base)
    customers, key, simulated = prepared.customers, prepared.key, prepared.simulated
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
