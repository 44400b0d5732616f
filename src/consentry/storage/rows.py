"""One mapper per stored type, derived from the table definitions: ``Event`` <-> ``events``,
``Choice`` <-> ``permission_states`` (and the choice an ``events`` row leaves).

The tables name their columns as the types name their fields, which import checks; a mapper
converts only the values the database stores in another form (a kind's text, options as JSON
text, datetimes in UTC).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Row

from consentry.domain.events import EVENT_FIELDS, Event, EventKind, choice_left, event_fields
from consentry.domain.messages import dumps
from consentry.domain.state import Choice, ChoiceState
from consentry.storage.tables import events, permission_states

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

# The columns of each type's table, in table order, and the type's fields they hold.
EVENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in events.c)
CHOICE_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in permission_states.c if c.name != "subject_id"
)
_CHOICE_FIELDS = frozenset(f.name for f in fields(Choice))
if set(EVENT_COLUMNS) != set(EVENT_FIELDS) or set(CHOICE_COLUMNS) != _CHOICE_FIELDS:
    raise RuntimeError("the events/permission_states tables and Event/Choice disagree")


def record_of(cls: type[R], row: Row[Any], **converted: Any) -> R:
    """The record ``cls`` (a dataclass whose fields the row's columns name) of ``row``: each
    field's column as read, or its value in ``converted`` where the database stores another
    form."""
    found = {f.name: getattr(row, f.name) for f in fields(cls) if f.name not in converted}
    return cls(**found, **converted)


def _utc(moment: datetime | None) -> datetime | None:
    """As ``UTCDateTime`` reads it: aware, in UTC (for values straight from the driver)."""
    return moment.astimezone(UTC) if moment is not None else None


# -- Event -------------------------------------------------------------------------------------


def event_row(event: Event) -> dict[str, Any]:
    """The ``events`` row of an event."""
    row = event_fields(event)
    row["options"] = dumps(event.options)
    return row


def event_from(values: Mapping[Any, Any]) -> Event:
    """The event of an ``events`` row's values by column name."""
    found = {name: values[name] for name in EVENT_COLUMNS}
    found["kind"] = EventKind(found["kind"])
    found["options"] = json.loads(found["options"])
    return Event(**found)


def event_of(row: Row[Any]) -> Event:
    """The event of an ``events`` row."""
    return event_from(row._mapping)


# -- Choice ------------------------------------------------------------------------------------


def choice_row(choice: Choice) -> dict[str, Any]:
    """The ``permission_states`` columns of a choice (without ``subject_id``)."""
    row = {name: getattr(choice, name) for name in CHOICE_COLUMNS}
    row["state"] = choice.state.value
    row["options"] = dumps(choice.options)
    return row


def _choice(values: dict[str, Any]) -> Choice:
    values["state"] = ChoiceState(values["state"])
    values["options"] = json.loads(values["options"])
    return Choice(**values)


def choice_of(row: Any) -> Choice:
    """The choice of a ``permission_states`` row (any row with those columns by name)."""
    return _choice({name: getattr(row, name) for name in CHOICE_COLUMNS})


def choice_of_values(values: Sequence[Any]) -> Choice:
    """The choice of driver values in ``CHOICE_COLUMNS`` order (datetimes made UTC)."""
    found = dict(zip(CHOICE_COLUMNS, values, strict=True))
    found["updated_at"] = _utc(found["updated_at"])
    found["expires_at"] = _utc(found["expires_at"])
    return _choice(found)


def choice_of_event(row: Row[Any]) -> Choice:
    """The choice an ``events`` row left on its permission (its options are not read: they
    may be sealed)."""
    return choice_left(event_of(row))
