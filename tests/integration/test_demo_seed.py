"""The demo: its customers, one of them asked again after a material notice change, and
``consentry demo --reset``."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from consentry.bootstrap import bootstrap
from consentry.cli.demo import reset_demo_database
from consentry.config import Settings
from consentry.demo.customers import DEMO_CUSTOMERS, seed
from consentry.web.i18n import translator
from consentry.web.standing import reconsent_items


def test_a_demo_customer_has_a_pending_re_consent_and_the_others_do_not(tmp_path: Path) -> None:
    container = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", demo=True))
    try:
        seed(container)
        pending = {}
        for customer in DEMO_CUSTOMERS:
            views = container.queries.permissions(customer.subject_id)
            items = reconsent_items(container.catalogue, views, translator("en"))
            pending[customer.subject_id] = [item.id for item in items]
        assert pending["demo-emma"] == ["sharing.ad_partners"]
        assert all(not ids for sid, ids in pending.items() if sid != "demo-emma")
        # Her earlier grant is in the ledger on the notice she saw then.
        events = container.queries.history("demo-emma", 10).events
        assert any(
            e.permission_id == "sharing.ad_partners" and e.notice_version == "2" for e in events
        )
        assert seed(container)  # seeding again leaves the history alone
        assert len(container.queries.history("demo-emma", 10).events) == len(events)
    finally:
        container.close()


def test_reset_deletes_the_demo_database_and_its_journal_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "consentry-demo.db"
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        path.write_bytes(b"x")
    reset_demo_database(database)
    assert not list(tmp_path.iterdir())
    assert "Reset: deleted" in capsys.readouterr().out
    reset_demo_database(database)  # nothing there: says so, no error
    assert "no demo database yet" in capsys.readouterr().out


def test_reset_that_cannot_delete_says_why_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "a-folder.db"
    database.mkdir()
    with pytest.raises(typer.Exit) as exited:
        reset_demo_database(database)
    assert exited.value.exit_code == 1
    assert "cannot delete" in capsys.readouterr().err
