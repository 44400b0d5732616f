"""Ledger rows as the driver gives them (``storage.checkpoints.EVENT_COLUMNS``), hashed without
building an ``Event``: verifying a whole ledger is dominated by this per-row work. The bytes are
``domain.events.canonical_bytes``'s; whenever the quick form does not reproduce the stored hash
(or the row is not in the form written by this code), the event is rebuilt and hashed the long
way, and that answer stands."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from consentry.domain.events import Event, recompute
from consentry.storage.checkpoints import EVENT_COLUMNS
from consentry.storage.rows import event_from

_text: Any = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes

# Column positions (and names).
_NAMES = tuple(name.strip() for name in EVENT_COLUMNS.split(","))
REF, SEQ, EVENT_ID, KIND, PERMISSION, STATE, OPTIONS, VERSION = range(8)
LOCALE, SOURCE, CHANNEL, OCCURRED, EXPIRES, PREV, HASH = range(8, 15)


def _s(value: str | None) -> str:
    return "null" if value is None else str(_text(value))


# Projection row positions (``storage.checkpoints.projection_rows``).
P_REF, P_SUBJECT, P_PERMISSION, P_STATE, P_VERSION, P_EXPIRES, P_EVENT = range(7)


def _moment(value: Any) -> str | None:
    """A stored datetime as the canonical form writes it; None when not quickly possible."""
    if isinstance(value, str):  # SQLite: "YYYY-MM-DD HH:MM:SS.ffffff", UTC
        return f'"{value[:10]}T{value[11:]}Z"' if len(value) == 26 else None
    if isinstance(value, datetime):
        return '"' + value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + '"'
    return None


def moment(value: Any) -> datetime | None:
    """A stored datetime as an aware UTC datetime."""
    if value is None or isinstance(value, datetime):
        return value.astimezone(UTC) if value is not None else None
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def event_of(row: Any) -> Event:
    values = dict(zip(_NAMES, row, strict=True))
    values["occurred_at"] = moment(row[OCCURRED])
    values["expires_at"] = moment(row[EXPIRES])
    return event_from(values)


def hash_ok(row: Any) -> bool:
    """Whether the row's stored hash is the hash of its fields."""
    occurred = _moment(row[OCCURRED])
    expires = "null" if row[EXPIRES] is None else _moment(row[EXPIRES])
    if occurred is not None and expires is not None:
        # Values written as they are: one that JSON would escape makes these bytes differ
        # from the canonical ones, and the long way below decides.
        channel, locale = row[CHANNEL], row[LOCALE]
        body = (
            f'{{"channel":{"null" if channel is None else _s(channel)},'
            f'"event_id":"{row[EVENT_ID]}","expires_at":{expires},"kind":"{row[KIND]}",'
            f'"locale":{"null" if locale is None else _s(locale)},'
            f'"notice_version":"{row[VERSION]}","occurred_at":{occurred},'
            f'"options":{row[OPTIONS]},"permission_id":"{row[PERMISSION]}",'
            f'"prev_hash":"{row[PREV]}","seq":{row[SEQ]},"source":"{row[SOURCE]}",'
            f'"state":"{row[STATE]}","subject_ref":"{row[REF]}"}}'
        )
        if hashlib.sha256(body.encode()).hexdigest() == row[HASH]:
            return True
    try:
        return bool(recompute(event_of(row)) == row[HASH])
    except (ValueError, TypeError):
        return False
