"""``consentry import``: records from another platform into the ledger, on both databases.

Each import is checked the way an operator would: ``consentry ledger verify`` and the ledger
audit (chains, projection equal to the replay, one outbox row per event)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from consentry.bootstrap import Container, bootstrap
from consentry.cli import app
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.reports.evidence import subject_report
from consentry.services.receipts import build_receipt
from consentry.storage.database import Database
from consentry.storage.tables import events, outbox
from ledger_audit import audit
from support import MINI, TEST_SECRET, make_settings

runner = CliRunner()
START = datetime(2024, 1, 1, tzinfo=UTC)
PERMS = (("recs", "2"), ("ads", "3"), ("email", "1"), ("sale", "1"))


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_CATALOGUE": str(MINI),
        "CONSENTRY_JWT_SECRET": TEST_SECRET,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def wired(env: dict[str, str]) -> Iterator[Container]:
    c = bootstrap(make_settings(env["CONSENTRY_DATABASE_URL"]))
    yield c
    c.close()


def generated(path: Path, count: int, per_subject: int = 8) -> Path:
    """``count`` records in time order, ``per_subject`` per customer, with record ids."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            pid, version = PERMS[i % per_subject % len(PERMS)]
            record = {
                "subject": f"cust-{i // per_subject}",
                "permission": pid,
                "state": "granted" if i % 3 else "denied",
                "time": (START + timedelta(seconds=i)).isoformat(),
                "notice_version": version,
                "locale": "fr",
                "record_id": f"r{i}",
            }
            out.write(json.dumps(record) + "\n")
    return path


def count_events(url: str) -> int:
    db = Database(url)
    try:
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
    finally:
        db.dispose()


def imported(result_output: str) -> int:
    return int(result_output.split(" record(s) imported")[0].split()[-1])


def test_100k_records_import_verify_and_a_rerun_writes_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = env["CONSENTRY_DATABASE_URL"]
    source = generated(tmp_path / "legacy.jsonl", 100_000)
    first = runner.invoke(app, ["import", str(source), "--source", "legacy"])
    assert first.exit_code == 0, first.output
    assert imported(first.stdout) == 100_000
    verified = runner.invoke(app, ["ledger", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "12500 subject(s), 100000 event(s) verified" in verified.stdout
    audit(url).assert_consistent()

    again = runner.invoke(app, ["import", str(source), "--source", "legacy"])
    assert again.exit_code == 0, again.output
    assert "0 record(s) imported, 100000 already in the ledger" in again.stdout
    assert count_events(url) == 100_000


def test_kill_9_mid_import_then_a_rerun_writes_every_record_exactly_once(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = env["CONSENTRY_DATABASE_URL"]
    total = 40_000
    source = generated(tmp_path / "legacy.jsonl", total)
    command = [sys.executable, "-m", "consentry", "import", str(source), "--batch", "500"]
    full_env = {**os.environ, **env}
    runner.invoke(app, ["db", "upgrade"])
    process = subprocess.Popen(
        command, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    written = 0
    while time.monotonic() < deadline and process.poll() is None:
        written = count_events(url)
        if written >= 2_000:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the import ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    cut = count_events(url)
    assert 0 < cut < total, cut

    rerun = subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert imported(rerun.stdout) == total - cut
    assert f"{cut} already in the ledger" in rerun.stdout
    result = audit(url)
    result.assert_consistent()
    assert result.events == total
    assert len(result.event_ids) == total


def test_bad_lines_are_reported_by_number_and_nothing_is_written(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = env["CONSENTRY_DATABASE_URL"]
    source = generated(tmp_path / "legacy.jsonl", 20)
    text = source.read_text().splitlines()
    text[2] = text[2].replace('"email"', '"nope"')
    text[6] = text[6].replace('"notice_version": "1"', '"notice_version": "7"')
    text[6] = text[6].replace('"state": "denied"', '"state": "granted"')
    text[9] = text[9].replace("2024-01-01", "2099-01-01")
    text[12] = "{not json"
    source.write_text("\n".join(text) + "\n")
    result = runner.invoke(app, ["import", str(source)])
    assert result.exit_code == 1
    assert f"{source}:3: unknown permission 'nope'" in result.stderr
    assert f"{source}:7: grant of 'email' on notice version '7'" in result.stderr
    assert f"{source}:10: time '2099-01-01T00:00:09+00:00' is in the future" in result.stderr
    assert f"{source}:13: not valid JSON" in result.stderr
    assert "4 bad line(s): nothing imported" in result.stderr
    assert count_events(url) == 0

    rejects = tmp_path / "bad.jsonl"
    skipped = runner.invoke(
        app, ["import", str(source), "--skip-invalid", "--rejects", str(rejects)]
    )
    assert skipped.exit_code == 0, skipped.output
    assert imported(skipped.stdout) == 16
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["line"] for r in lines] == [3, 7, 10, 13]
    assert lines[3]["text"] == "{not json"
    assert count_events(url) == 16
    audit(url).assert_consistent()


def test_a_csv_file_imports_with_options_sealed_and_its_source_shown(
    wired: Container, tmp_path: Path
) -> None:
    source = tmp_path / "export.csv"
    source.write_text(
        "subject,permission,state,time,notice_version,locale,source,options,record_id\n"
        'cust-a,recs,granted,2024-05-01T09:00:00Z,1,fr,oldcmp,"{""size"": ""all""}",x1\n'
        "cust-a,ads,denied,2024-05-01T09:00:01Z,3,fr,oldcmp,,x2\n"
        "cust-b,email,granted,2024-05-02T09:00:00+02:00,1,,,,\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["import", str(source), "--source", "shopdb"])
    assert result.exit_code == 0, result.output
    assert imported(result.stdout) == 3

    page = wired.queries.history("cust-a")
    assert [(e.permission_id, e.source) for e in page.events] == [
        ("ads", "import:oldcmp"),
        ("recs", "import:oldcmp"),
    ]
    assert page.events[1].options == {"size": "all"}  # sealed in the ledger, opened here
    with wired.db.read() as conn:
        stored = conn.execute(select(events.c.options).where(events.c.permission_id == "recs"))
        assert "size" not in stored.scalar_one()
    views = {v.id: v for v in wired.queries.permissions("cust-b")}
    assert views["email"].state == "granted" and views["email"].source == "import:shopdb"
    assert views["email"].updated_at == datetime(2024, 5, 2, 7, tzinfo=UTC)

    event = page.events[1]
    receipt = build_receipt(
        wired.catalogue, event, "cust-a", previous=None, issued_at=START, receipt_id="r"
    )
    assert receipt["collection_method"]["source"] == "import:oldcmp"
    assert "another consent platform (oldcmp)" in receipt["collection_method"]["description"]
    assert receipt["events"][0]["event_time"].startswith("2024-05-01T09:00:00")
    assert "import:oldcmp" in subject_report(wired, "cust-a")


def test_an_older_record_never_replaces_a_newer_choice(wired: Container, tmp_path: Path) -> None:
    wired.consents.change("cust-l", [Change("recs", ChoiceState.DENIED)], Context(source="web"))
    source = tmp_path / "late.jsonl"
    rows = [
        {"subject": "cust-l", "permission": "recs", "state": "granted", "notice_version": "2",
         "time": "2024-01-01T00:00:00Z", "record_id": "old"},
        {"subject": "cust-l", "permission": "ads", "state": "granted", "notice_version": "3",
         "time": "2024-01-01T00:00:00Z", "record_id": "other"},
    ]  # fmt: skip
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["import", str(source), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert imported(result.stdout) == 1
    assert "older than the choice on 'recs' held since" in result.stderr
    views = {v.id: v for v in wired.queries.permissions("cust-l")}
    assert views["recs"].state == "denied" and views["ads"].state == "granted"

    # A live change after the import continues the same chain.
    wired.consents.change("cust-l", [Change("ads", ChoiceState.DENIED)], Context(source="web"))
    assert runner.invoke(app, ["ledger", "verify"]).exit_code == 0
    audit(wired.settings.database_url).assert_consistent()
    with wired.db.read() as conn:
        count = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    assert count == 3


def test_a_record_id_already_imported_for_another_subject_is_found_in_the_ledger(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = env["CONSENTRY_DATABASE_URL"]
    row = {"subject": "cust-a", "permission": "recs", "state": "granted", "notice_version": "2",
           "time": "2024-01-01T00:00:00Z", "record_id": "r-1"}  # fmt: skip
    first = tmp_path / "first.jsonl"
    first.write_text(json.dumps(row) + "\n")
    assert imported(runner.invoke(app, ["import", str(first)]).stdout) == 1
    # The same record id from the same source, now under a customer new to the ledger, with
    # a record of that customer that is new: the batch finds the first and writes the second.
    second = tmp_path / "second.jsonl"
    other = {**row, "subject": "cust-b", "permission": "ads", "notice_version": "3",
             "record_id": "r-2"}  # fmt: skip
    second.write_text(json.dumps({**row, "subject": "cust-b"}) + "\n" + json.dumps(other) + "\n")
    result = runner.invoke(app, ["import", str(second)])
    assert result.exit_code == 0, result.output
    assert "1 record(s) imported, 1 already in the ledger" in result.stdout
    audited = audit(url)
    audited.assert_consistent()
    assert audited.events == 2


def test_several_writers_keep_every_chain_whole_and_in_order(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = env["CONSENTRY_DATABASE_URL"]
    source = generated(tmp_path / "legacy.jsonl", 6_000, per_subject=12)
    command = ["import", str(source), "--writers", "3", "--batch", "250"]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert imported(result.stdout) == 6_000
    verified = runner.invoke(app, ["ledger", "verify"])
    assert verified.exit_code == 0, verified.output
    audited = audit(url)
    audited.assert_consistent()  # the projection is each chain's last word, in file order
    assert audited.events == 6_000
    assert "0 record(s) imported, 6000 already" in runner.invoke(app, command).stdout


def test_values_with_tabs_and_backslashes_are_stored_as_read(
    wired: Container, tmp_path: Path
) -> None:
    rows = [
        {"subject": "cust\\tab\tx", "permission": "ads", "state": "denied",
         "notice_version": "v\\2\t\n", "time": "2024-01-01T00:00:00Z", "locale": "f\\r"},
        {"subject": "cust-plain", "permission": "ads", "state": "denied",
         "notice_version": "3", "time": "2024-01-01T00:00:01Z"},
    ]  # fmt: skip
    source = tmp_path / "odd.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["import", str(source)])
    assert result.exit_code == 0, result.output
    assert imported(result.stdout) == 2
    (event,) = wired.queries.history("cust\\tab\tx").events
    assert (event.notice_version, event.locale) == ("v\\2\t\n", "f\\r")
    views = {v.id: v for v in wired.queries.permissions("cust\\tab\tx")}
    assert views["ads"].state == "denied" and views["ads"].notice_version == "v\\2\t\n"
    assert runner.invoke(app, ["ledger", "verify"]).exit_code == 0
    audit(wired.settings.database_url).assert_consistent()
