"""One mapper per stored type: what is written reads back the same."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from consentry.domain.events import GENESIS, EventKind, event_fields, seal
from consentry.domain.state import Choice, ChoiceState
from consentry.storage.rows import (
    CHOICE_COLUMNS,
    EVENT_COLUMNS,
    choice_of,
    choice_of_values,
    choice_row,
    event_from,
    event_row,
)

MOMENT = datetime(2026, 11, 29, 10, 0, 0, 5, tzinfo=UTC)
EVENT = seal(
    event_id="e-1",
    subject_ref="ab" * 32,
    seq=1,
    kind=EventKind.PERMISSION_GRANTED,
    permission_id="recs",
    state="granted",
    notice_version="2",
    source="page",
    occurred_at=MOMENT,
    prev_hash=GENESIS,
    options={"frequency": "weekly"},
    locale="fr",
    channel="web",
    expires_at=MOMENT,
)
CHOICE = Choice("recs", ChoiceState.DENIED, "2", MOMENT, "api", {"a": "é"}, MOMENT, "e-1")


def test_an_event_row_has_every_column_and_reads_back() -> None:
    row = event_row(EVENT)
    assert sorted(row) == sorted(EVENT_COLUMNS)
    assert row["kind"] == "permission_granted" and row["options"] == '{"frequency":"weekly"}'
    assert event_from(row) == EVENT
    assert event_fields(EVENT)["options"] == {"frequency": "weekly"}


def test_a_choice_row_has_every_column_and_reads_back() -> None:
    row = choice_row(CHOICE)
    assert sorted(row) == sorted(CHOICE_COLUMNS)
    assert choice_of(SimpleNamespace(**row)) == CHOICE
    assert choice_of_values([row[name] for name in CHOICE_COLUMNS]) == CHOICE
