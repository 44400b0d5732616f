"""The command line starts light: ``consentry --help`` and the commands that need no database
do not pay for the database layer, the web framework or the broker client."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from consentry.cli import app

HEAVY = (
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "nats",
    "playwright",
)


GPP = "DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"  # a GPP string: one TCF EU section


def _run(code: str) -> tuple[list[str], str]:
    """The heavy libraries loaded once ``code`` ran in a fresh interpreter, and its output."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    *output, last = done.stdout.splitlines()
    modules = set(json.loads(last))
    return [name for name in HEAVY if name in modules], "\n".join(output)


def test_importing_the_cli_loads_no_database_web_or_broker_library() -> None:
    assert _run("import consentry.cli")[0] == []


def test_a_standards_command_runs_without_the_database_layer() -> None:
    code = (
        "import sys\nfrom consentry.cli import app\n"
        f"sys.argv = ['consentry', 'gpp', 'decode', {GPP!r}]\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc"
    )
    loaded, output = _run(code)
    assert json.loads(output)["section_ids"] == [2]
    assert loaded == []


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import typer.main

    click_group = typer.main.get_command(group)  # type: ignore[arg-type]
    found: list[tuple[str, ...]] = []
    for name, command in click_group.commands.items():  # type: ignore[attr-defined]
        sub = getattr(command, "commands", None)
        if sub:
            found += [(*prefix, name, inner) for inner in sub]
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("command", _commands(app), ids=" ".join)
def test_every_command_shows_its_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
