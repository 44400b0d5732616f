"""The command line: keys, tokens, catalogue validation, migrations, ledger verification."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from consentry.bootstrap import bootstrap
from consentry.cli import app
from consentry.config import DEMO_JWT_SECRET, Settings
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.scopes import Scope
from consentry.services.keys import KeyService
from consentry.services.tokens import TokenService
from consentry.storage.database import Database
from consentry.storage.migrate import head_revision
from consentry.storage.tables import events
from support import MINI, TEST_SECRET, make_settings

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_CATALOGUE": str(MINI),
        "CONSENTRY_JWT_SECRET": TEST_SECRET,
    }
    for name in ("CONSENTRY_DEMO", "CONSENTRY_JWT_PUBLIC_KEY"):
        monkeypatch.delenv(name, raising=False)
    return values


def test_keys_create_prints_only_a_working_key(env: dict[str, str]) -> None:
    result = runner.invoke(
        app, ["keys", "create", "--scope", "decide", "--scope", "subjects:read"], env=env
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("csk_")
    db = Database(env["CONSENTRY_DATABASE_URL"])
    try:
        key = KeyService(db).verify(lines[0])
    finally:
        db.dispose()
    assert key is not None and {s.value for s in key.scopes} == {"decide", "subjects:read"}


def test_keys_create_help_and_the_readme_list_every_scope() -> None:
    result = runner.invoke(app, ["keys", "create", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for scope in Scope:
        assert scope.value in result.stdout, scope
        assert f"`{scope.value}`" in readme, scope


def test_keys_create_rejects_an_unknown_scope(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["keys", "create", "--scope", "everything"], env=env)
    assert result.exit_code == 2
    assert "unknown scope(s): everything" in result.stderr


def test_token_prints_a_subject_jwt(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["token", "demo-amelie"], env=env)
    assert result.exit_code == 0, result.output
    settings = Settings(jwt_secret=TEST_SECRET)
    assert TokenService(settings).verify(result.stdout.strip()) == "demo-amelie"


def test_token_without_a_secret_is_refused(env: dict[str, str]) -> None:
    env = {**env, "CONSENTRY_JWT_SECRET": ""}
    result = runner.invoke(app, ["token", "x"], env={k: v for k, v in env.items() if v})
    assert result.exit_code == 2 and "CONSENTRY_JWT_SECRET" in result.stderr


def test_catalog_validate_accepts_a_good_file() -> None:
    result = runner.invoke(app, ["catalog", "validate", str(MINI)])
    assert result.exit_code == 0 and "valid (version test.1, 8 permissions" in result.stdout


def test_catalog_validate_names_the_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = MINI.read_text(encoding="utf-8").replace("legal_basis: contract", "legal_basis: vibes")
    bad.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["catalog", "validate", str(bad)])
    line = text[: text.index("legal_basis: vibes")].count("\n") + 1
    assert result.exit_code == 1
    assert f"line {line}: permissions.3.legal_basis" in result.stderr


def test_db_upgrade_reports_the_revision(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env=env)
    assert result.exit_code == 0
    assert f"database at revision {head_revision()}" in result.stdout


def test_db_upgrade_on_an_unreachable_database_fails_clearly() -> None:
    env = {"CONSENTRY_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    result = runner.invoke(app, ["db", "upgrade"], env=env)
    assert result.exit_code == 1 and result.stderr.startswith("error: cannot migrate")


def test_ledger_verify_passes_then_fails_after_tampering(env: dict[str, str]) -> None:
    container = bootstrap(make_settings(env["CONSENTRY_DATABASE_URL"]))
    for state in (ChoiceState.GRANTED, ChoiceState.DENIED, ChoiceState.GRANTED):
        container.consents.change("s1", [Change("recs", state)], Context())
    ok = runner.invoke(app, ["ledger", "verify"], env=env)
    assert ok.exit_code == 0 and "1 subject(s), 3 event(s) verified" in ok.stdout
    with container.db.write() as conn:
        conn.execute(update(events).where(events.c.seq == 2).values(state="granted"))
    container.close()
    broken = runner.invoke(app, ["ledger", "verify"], env=env)
    assert broken.exit_code == 1
    assert "ledger broken: subject 's1' event seq 2" in broken.stderr
    assert "hash mismatch" in broken.stderr


def test_ledger_verify_of_an_unknown_subject_fails(env: dict[str, str]) -> None:
    runner.invoke(app, ["db", "upgrade"], env=env)
    result = runner.invoke(app, ["ledger", "verify", "--subject", "ghost"], env=env)
    assert result.exit_code == 1 and "no ledger for subject 'ghost'" in result.stderr


@pytest.mark.parametrize("secret", [None, DEMO_JWT_SECRET, "short"])
def test_serve_refuses_a_default_or_weak_secret(sqlite_url: str, secret: str | None) -> None:
    env = {"CONSENTRY_DATABASE_URL": sqlite_url, "CONSENTRY_CATALOGUE": str(MINI)}
    if secret is not None:
        env["CONSENTRY_JWT_SECRET"] = secret
    result = runner.invoke(app, ["serve", "--port", "1"], env=env)
    assert (
        result.exit_code == 2
        and "refusing" in result.stderr
        or "no subject-token key" in result.stderr
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["demo"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["outbox", "prune"],
        ["token"],
        ["catalog", "validate"],
        ["db", "upgrade"],
        ["ledger", "verify"],
        ["report"],
        ["import"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_report_builds_an_evidence_pack_with_the_chain_verified(
    env: dict[str, str], tmp_path: Path
) -> None:
    container = bootstrap(make_settings(env["CONSENTRY_DATABASE_URL"]))
    container.consents.change(
        "s1", [Change("ads", ChoiceState.GRANTED)], Context(source="web", locale="fr")
    )
    container.consents.change("s1", [Change("ads", ChoiceState.DENIED)], Context(source="app"))
    container.close()
    out = tmp_path / "evidence.html"
    result = runner.invoke(app, ["report", "--subject", "s1", "--output", str(out)], env=env)
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "Hash chain intact: 2 event(s)" in html
    assert "Publicité personnalisée" in html  # the notice as shown, in the language shown
    assert html.index("permission_granted") < html.index("permission_denied")


def test_report_shows_a_broken_chain(env: dict[str, str]) -> None:
    container = bootstrap(make_settings(env["CONSENTRY_DATABASE_URL"]))
    container.consents.change("s1", [Change("ads", ChoiceState.GRANTED)], Context())
    with container.db.write() as conn:
        conn.execute(update(events).values(source="forged"))
    container.close()
    result = runner.invoke(app, ["report", "--subject", "s1"], env=env)
    assert result.exit_code == 0 and "BROKEN at event seq 1: hash mismatch" in result.stdout


def test_report_for_a_period_counts_its_events_and_names_no_customer(
    env: dict[str, str], tmp_path: Path
) -> None:
    container = bootstrap(make_settings(env["CONSENTRY_DATABASE_URL"]))
    moments = iter(
        datetime(2026, month, day, 12, tzinfo=UTC) for month, day in [(10, 31), (11, 2), (11, 3)]
    )
    container.consents.clock = lambda: next(moments)
    on_v1 = Context(source="web", locale="fr")
    container.consents.change("cust-outside", [Change("ads", ChoiceState.GRANTED)], Context())
    container.consents.change(
        "cust-one", [Change("recs", ChoiceState.GRANTED, notice_version="1")], on_v1
    )
    container.consents.change("cust-two", [Change("recs", ChoiceState.DENIED)], Context())
    container.close()
    out = tmp_path / "period.html"
    args = ["report", "--from", "2026-11-01", "--to", "2026-12-01", "--output", str(out)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "2 event(s) from 2 customer(s)" in html
    assert "Every hash chain intact: 3 customer chain(s), 3 event(s)" in html
    assert "Nous utilisons vos achats pour suggérer des produits." in html  # version 1, as shown
    assert "ads" not in html.split("In this period")[1].split("What was shown")[0]
    assert "cust-" not in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-01"], "give --subject SID, or a period with both --from and --to"),
        (["--from", "2026-13-01", "--to", "2026-12-01"], "--from '2026-13-01' is not a date"),
        (["--from", "2026-12-01", "--to", "2026-11-01"], "--from must be before --to"),
        (["--subject", "s1", "--from", "2026-11-01"], "either --subject or --from/--to"),
        ([], "give --subject SID"),
    ],
)
def test_report_explains_a_wrong_choice_of_options(
    env: dict[str, str], args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["report", *args], env=env)
    assert result.exit_code == 2 and message in result.stderr


def test_a_revoked_key_authenticates_nothing(env: dict[str, str]) -> None:
    created = runner.invoke(app, ["keys", "create", "--scope", "decide", "--name", "ads"], env=env)
    secret = created.stdout.strip()
    listed = runner.invoke(app, ["keys", "list"], env=env)
    assert listed.exit_code == 0 and secret not in listed.stdout
    key_id, name, scopes, _, state = listed.stdout.strip().split("\t")
    assert (name, scopes, state) == ("ads", "decide", "active")
    revoked = runner.invoke(app, ["keys", "revoke", key_id], env=env)
    assert revoked.exit_code == 0 and f"key {key_id} (ads) revoked at" in revoked.stdout
    assert (
        runner.invoke(app, ["keys", "list"], env=env).stdout.split("\t")[-1].startswith("revoked")
    )
    db = Database(env["CONSENTRY_DATABASE_URL"])
    try:
        assert KeyService(db).verify(secret) is None
    finally:
        db.dispose()
    again = runner.invoke(app, ["keys", "revoke", key_id], env=env)
    assert again.exit_code == 0  # revoking twice changes nothing and says when it happened


def test_revoking_an_unknown_key_says_so(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["keys", "revoke", "0123456789abcdef"], env=env)
    assert result.exit_code == 1
    assert "no service key with id '0123456789abcdef'" in result.stderr
