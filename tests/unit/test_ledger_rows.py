"""The quick hash of a stored ledger row agrees with the event's canonical hash, and refuses
every altered field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.domain.events import Event, EventKind, seal
from consentry.domain.messages import dumps
from consentry.services import _ledger_rows as rw

texts = st.text(min_size=0, max_size=12)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def _sqlite(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if moment is not None else None


def _row(e: Event, as_text: bool) -> list[object]:
    when: Callable[[datetime | None], object] = _sqlite if as_text else (lambda m: m)
    return [
        e.subject_ref,
        e.seq,
        e.event_id,
        e.kind.value,
        e.permission_id,
        e.state,
        dumps(e.options),
        e.notice_version,
        e.locale,
        e.source,
        e.channel,
        when(e.occurred_at),
        when(e.expires_at),
        e.prev_hash,
        e.hash,
    ]


@settings(max_examples=200, deadline=None)
@given(
    options=st.dictionaries(texts, st.one_of(texts, st.integers(), st.booleans()), max_size=3),
    channel=st.one_of(st.none(), texts),
    locale=st.one_of(st.none(), st.sampled_from(["fr", "nl", "de-BE"])),
    occurred=moments,
    expires=st.one_of(st.none(), moments),
    as_text=st.booleans(),
    field=st.integers(min_value=2, max_value=14),
)
def test_the_quick_hash_agrees_and_catches_any_edited_field(
    options: dict[str, object],
    channel: str | None,
    locale: str | None,
    occurred: datetime,
    expires: datetime | None,
    as_text: bool,
    field: int,
) -> None:
    event = seal(
        event_id="6f1c9a52-0000-4000-8000-00000000000a",
        subject_ref="ab" * 32,
        seq=3,
        kind=EventKind.PERMISSION_GRANTED,
        permission_id="recs",
        state="granted",
        notice_version="2",
        source="app",
        occurred_at=occurred,
        prev_hash="cd" * 32,
        options=options,
        locale=locale,
        channel=channel,
        expires_at=expires,
    )
    row = _row(event, as_text)
    assert rw.hash_ok(row)
    if field == rw.HASH or (field == rw.EXPIRES and row[field] is None):
        return
    edited = list(row)
    value = edited[field]
    if field == rw.OPTIONS:
        edited[field] = dumps({**options, "added": 1})
    elif field == rw.SEQ:
        edited[field] = 4
    elif isinstance(value, datetime):
        edited[field] = value.replace(year=value.year % 2000 + 2001)
    elif field in (rw.OCCURRED, rw.EXPIRES):
        edited[field] = ("2001" if not str(value).startswith("2001") else "2002") + str(value)[4:]
    else:
        edited[field] = str(value or "") + "x"
    assert not rw.hash_ok(edited)


@pytest.mark.parametrize("stored", ["2026-01-01 00:00:01", "garbage"])
def test_a_row_not_in_the_written_form_is_judged_the_long_way(stored: str) -> None:
    event = seal(
        event_id="6f1c9a52-0000-4000-8000-00000000000b",
        subject_ref="ab" * 32,
        seq=1,
        kind=EventKind.PERMISSION_DENIED,
        permission_id="ads",
        state="denied",
        notice_version="1",
        source="api",
        occurred_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
        prev_hash="0" * 64,
    )
    row = _row(event, True)
    row[rw.OCCURRED] = stored
    assert rw.hash_ok(row) is (stored == "2026-01-01 00:00:01")
