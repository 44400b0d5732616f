"""The ``consentry`` command line: serve, demo, keys, tokens, catalogue, database, ledger.

One module per group of commands; this one assembles them, in the order ``--help`` lists them.
"""

from __future__ import annotations

import sys

import typer

from consentry.cli.demo import demo
from consentry.cli.importing import import_command
from consentry.cli.keys import keys_app, token
from consentry.cli.ledger import db_app, ledger_app
from consentry.cli.maintenance import catalog_app, lifecycle_app, outbox_app, uses_app
from consentry.cli.reports import report, verify_site_command
from consentry.cli.serve import serve
from consentry.cli.standards import gpp_app, receipt_app, tcf_app
from consentry.events.command import relay_command

__all__ = ["app", "main"]

app = typer.Typer(
    help="consentry: permissions center for e-commerce (catalogue, ledger, decision point).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("relay")(relay_command)
app.command("import")(import_command)
app.command("serve")(serve)
app.command("demo")(demo)
app.command("token")(token)
app.command("report")(report)
app.command("verify-site")(verify_site_command)
app.add_typer(keys_app, name="keys")
app.add_typer(catalog_app, name="catalog")
app.add_typer(db_app, name="db")
app.add_typer(ledger_app, name="ledger")
app.add_typer(tcf_app, name="tcf")
app.add_typer(gpp_app, name="gpp")
app.add_typer(receipt_app, name="receipt")
app.add_typer(outbox_app, name="outbox")
app.add_typer(uses_app, name="uses")
app.add_typer(lifecycle_app, name="lifecycle")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
