"""Whoever can write to the database cannot rewrite the ledger unnoticed: after a signed
checkpoint, each kind of tampering makes ``consentry ledger verify`` exit 1 and name the place.
On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, delete, update
from typer.testing import CliRunner

from consentry.bootstrap import Container, bootstrap
from consentry.cli import app
from consentry.domain.events import recompute
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.services.receipt_signing import new_signing_key_pem
from consentry.storage import repository as repo
from consentry.storage.rows import event_row
from consentry.storage.tables import checkpoints, events, permission_states, subjects
from support import MINI, TEST_SECRET, make_settings, ref_of

runner = CliRunner()
GRANT, DENY = ChoiceState.GRANTED, ChoiceState.DENIED


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("CONSENTRY_DEMO", "CONSENTRY_JWT_PUBLIC_KEY", "CONSENTRY_RECEIPT_PREVIOUS_KEYS"):
        monkeypatch.delenv(name, raising=False)
    return {
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_CATALOGUE": str(MINI),
        "CONSENTRY_JWT_SECRET": TEST_SECRET,
        "CONSENTRY_RECEIPT_SIGNING_KEY": new_signing_key_pem(),
    }


@pytest.fixture
def ledger(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Container, Path]]:
    """Three subjects' chains under a signed checkpoint, published to a file."""
    container = bootstrap(
        make_settings(
            env["CONSENTRY_DATABASE_URL"],
            receipt_signing_key=env["CONSENTRY_RECEIPT_SIGNING_KEY"],
        )
    )
    c = container.consents
    for change in (
        Change("recs", GRANT),
        Change("ads", GRANT),
        Change("recs", DENY),
        Change("email", GRANT),
    ):
        c.change("s1", [change], Context())
    c.change("s2", [Change("recs", GRANT)], Context())
    c.change("s2", [Change("ads", DENY)], Context())
    c.change("s3", [Change("email", GRANT)], Context())
    published = tmp_path / "checkpoints.jsonl"
    made = runner.invoke(app, ["ledger", "checkpoint", "--out", str(published)], env=env)
    assert made.exit_code == 0, made.stderr
    assert made.stdout.startswith("checkpoint 1: 3 chain(s), root ")
    ok = runner.invoke(app, ["ledger", "verify", "--checkpoints", str(published)], env=env)
    assert ok.exit_code == 0, ok.stderr
    assert "3 subject(s), 7 event(s) verified, against checkpoint 1" in ok.stdout
    yield container, published
    container.close()


def _rewrite(conn: Connection, ref: str, seq: int, **changes: Any) -> None:
    """Edit event ``seq`` and recompute every later hash and the head: a careful forger."""
    chain = list(repo.chain(conn, ref))
    prev = chain[seq - 2].hash if seq > 1 else chain[0].prev_hash
    for event in chain[seq - 1 :]:
        edited = dataclasses.replace(event, prev_hash=prev, **(changes if event.seq == seq else {}))
        edited = dataclasses.replace(edited, hash=recompute(edited))
        conn.execute(
            update(events).where(events.c.event_id == event.event_id).values(**event_row(edited))
        )
        prev = edited.hash
    conn.execute(update(subjects).where(subjects.c.subject_ref == ref).values(head_hash=prev))


def _cut_tail(conn: Connection, ref: str) -> None:
    """Delete the newest event and move the head back onto the one before."""
    chain = list(repo.chain(conn, ref))
    conn.execute(delete(events).where(events.c.event_id == chain[-1].event_id))
    conn.execute(
        update(subjects)
        .where(subjects.c.subject_ref == ref)
        .values(head_seq=chain[-2].seq, head_hash=chain[-2].hash)
    )


def _drop_subject(conn: Connection, ref: str) -> None:
    conn.execute(delete(events).where(events.c.subject_ref == ref))
    conn.execute(delete(subjects).where(subjects.c.subject_ref == ref))
    conn.execute(delete(permission_states).where(permission_states.c.subject_id == "s2"))


Tamper = Callable[[Connection, dict[str, str]], object]
CASES: dict[str, tuple[Tamper, list[str]]] = {
    "edited event": (
        lambda conn, refs: conn.execute(
            update(events)
            .where(events.c.subject_ref == refs["s1"], events.c.seq == 3)
            .values(state="granted")
        ),
        ["subject 's1' event seq 3", "hash mismatch"],
    ),
    "deleted middle event": (
        lambda conn, refs: conn.execute(
            delete(events).where(events.c.subject_ref == refs["s1"], events.c.seq == 2)
        ),
        ["subject 's1' event seq 3", "sequence gap"],
    ),
    "deleted tail with the head moved back": (
        lambda conn, refs: _cut_tail(conn, refs["s1"]),
        ["subject 's1' event seq 4", "checkpoint 1", "head moved back"],
    ),
    "edited event with the chain recomputed": (
        lambda conn, refs: _rewrite(conn, refs["s1"], 2, state="denied"),
        ["subject 's1' event seq 4", "differs from checkpoint 1", "rewritten"],
    ),
    "deleted subject row": (
        lambda conn, refs: _drop_subject(conn, refs["s2"]),
        ["checkpoint 1 is missing", "subject row was deleted"],
    ),
    "edited projection row": (
        lambda conn, refs: conn.execute(
            update(permission_states)
            .where(
                permission_states.c.subject_id == "s1", permission_states.c.permission_id == "recs"
            )
            .values(state="granted")
        ),
        ["subject 's1'", "projection row 'recs' says 'granted'", "'denied'"],
    ),
    "edited checkpoint row": (
        lambda conn, refs: conn.execute(update(checkpoints).values(root="0" * 64)),
        ["checkpoint 1", "differs from its signed statement"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_tampering_makes_verify_exit_1_and_name_the_place(
    ledger: tuple[Container, Path], env: dict[str, str], case: str
) -> None:
    container, published = ledger
    tamper, expected = CASES[case]
    refs = {s: ref_of(container.db, s) for s in ("s1", "s2", "s3")}
    with container.db.write() as conn:
        tamper(conn, refs)
    broken = runner.invoke(app, ["ledger", "verify", "--checkpoints", str(published)], env=env)
    assert broken.exit_code == 1, broken.stdout
    for words in expected:
        assert words in broken.stderr, broken.stderr


def test_an_edited_published_checkpoint_line_is_refused(
    ledger: tuple[Container, Path], env: dict[str, str]
) -> None:
    _, published = ledger
    doc = json.loads(published.read_text())
    doc["checkpoint"]["tree_size"] = 2  # as if one chain had never been recorded
    published.write_text(json.dumps(doc) + "\n")
    broken = runner.invoke(app, ["ledger", "verify", "--checkpoints", str(published)], env=env)
    assert broken.exit_code == 1
    assert "published checkpoint line 1" in broken.stderr
    assert "differs from the signed one" in broken.stderr


def test_a_database_rolled_back_behind_its_published_checkpoints_is_refused(
    ledger: tuple[Container, Path], env: dict[str, str]
) -> None:
    container, published = ledger
    container.consents.change("s3", [Change("email", DENY)], Context())
    again = runner.invoke(app, ["ledger", "checkpoint", "--out", str(published)], env=env)
    assert again.exit_code == 0 and again.stdout.startswith("checkpoint 2: 3 chain(s)")
    assert len(published.read_text().splitlines()) == 2
    ok = runner.invoke(app, ["ledger", "verify", "--checkpoints", str(published)], env=env)
    assert ok.exit_code == 0 and "against checkpoint 2" in ok.stdout
    with container.db.write() as conn:  # the newest checkpoint and what it covered, undone
        conn.execute(delete(checkpoints).where(checkpoints.c.number == 2))
        _cut_tail(conn, ref_of(container.db, "s3"))
    broken = runner.invoke(app, ["ledger", "verify", "--checkpoints", str(published)], env=env)
    assert broken.exit_code == 1
    assert "checkpoint 2 is published but not in the database" in broken.stderr
    assert "rolled back" in broken.stderr


def test_a_removed_line_in_the_published_file_breaks_the_chain_of_checkpoints(
    ledger: tuple[Container, Path], env: dict[str, str]
) -> None:
    container, published = ledger
    for state in (DENY, GRANT):
        container.consents.change("s3", [Change("email", state)], Context())
        runner.invoke(app, ["ledger", "checkpoint", "--out", str(published)], env=env)
    lines = published.read_text().splitlines()
    assert len(lines) == 3
    published.write_text(lines[0] + "\n" + lines[2] + "\n")
    broken = runner.invoke(app, ["ledger", "verify", "--checkpoints", str(published)], env=env)
    assert broken.exit_code == 1
    assert "published checkpoint line 2" in broken.stderr
    assert "does not follow the checkpoint before it" in broken.stderr


def test_a_truncation_below_an_older_checkpoint_is_caught_by_the_consistency_of_the_newest(
    ledger: tuple[Container, Path], env: dict[str, str]
) -> None:
    """Cut s1 back, then sign a new checkpoint over the cut ledger: checkpoint 2 is not an
    extension of checkpoint 1."""
    container, published = ledger
    with container.db.write() as conn:
        _cut_tail(conn, ref_of(container.db, "s1"))
        conn.execute(delete(permission_states).where(permission_states.c.permission_id == "email"))
    runner.invoke(app, ["ledger", "checkpoint"], env=env)
    broken = runner.invoke(app, ["ledger", "verify"], env=env)
    assert broken.exit_code == 1
    assert "checkpoint 2" in broken.stderr and "not an extension of checkpoint 1" in broken.stderr


def test_the_server_answers_from_the_chain_not_from_an_edited_projection_row(
    ledger: tuple[Container, Path], caplog: pytest.LogCaptureFixture
) -> None:
    container, _ = ledger
    before = {v.id: v for v in container.queries.permissions("s1")}
    assert before["recs"].state == "denied" and not before["recs"].effective
    with container.db.write() as conn:
        conn.execute(
            update(permission_states)
            .where(
                permission_states.c.subject_id == "s1", permission_states.c.permission_id == "recs"
            )
            .values(state="granted")
        )
    with caplog.at_level("WARNING", logger="consentry.projection"):
        after = {v.id: v for v in container.queries.permissions("s1")}
    assert after["recs"].state == "denied" and not after["recs"].effective
    assert after["recs"].event_id == before["recs"].event_id
    assert "projection disagrees with the ledger" in caplog.text and "recs" in caplog.text
    assert "s1" not in caplog.text.replace("consentry", "")  # named by reference, not by id
