"""Request and response bodies of the v1 API."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_NUMERIC = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _iso_only(value: object) -> object:
    # Pydantic would read 1700000000 (or "0.5") as a Unix time and "2026-11-29" as midnight;
    # the schema promises an RFC 3339 date-time, so neither is silently reinterpreted.
    text = value if isinstance(value, str) else None
    if isinstance(value, int | float) or (text is not None and _NUMERIC.match(text)):
        raise ValueError("expected an RFC 3339 date-time such as 2026-11-29T10:00:00Z")
    if text is not None and not _DATE_TIME.match(text):
        raise ValueError("expected an RFC 3339 date-time such as 2026-11-29T10:00:00Z")
    return value


def _representable(value: datetime) -> datetime:
    # 9999-12-31T23:59:59-14:00 parses, but is past the last instant Python can hold in UTC.
    try:
        value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)
    except OverflowError:
        raise ValueError("date-time out of range (after 9999-12-31T23:59:59Z)") from None
    return value


# A date-time given as text (RFC 3339), never a number, that converts to UTC.
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_representable)]

MAX_OPTIONS_DEPTH = 8


def _well_formed_options(value: dict[str, Any]) -> dict[str, Any]:
    """Options nest at most ``MAX_OPTIONS_DEPTH`` deep and hold only well-formed Unicode (no
    lone surrogates such as "\ud800": they cannot be encoded, sealed or stored)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_OPTIONS_DEPTH:
                raise ValueError(f"options nest deeper than {MAX_OPTIONS_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                raise ValueError("options hold text that is not valid Unicode") from None
    return value


Options = Annotated[dict[str, Any], AfterValidator(_well_formed_options)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ChoiceLiteral = Literal["granted", "denied"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecipientOut(BaseModel):
    id: str
    name: str
    country: str
    kind: str
    outside_eea: bool


class CatalogPermissionOut(BaseModel):
    id: str
    title: str
    text: str
    purpose: str
    purpose_label: str
    categories: list[str]
    recipients: list[RecipientOut]
    legal_basis: str
    group: str
    notice_version: str
    toggleable: bool


class DevicePermissionOut(BaseModel):
    id: str
    title: str
    text: str
    values: list[str]


class CatalogOut(BaseModel):
    catalogue_version: str
    locale: str
    controller: dict[str, str]
    permissions: list[CatalogPermissionOut]
    device_permissions: list[DevicePermissionOut]


class PermissionOut(BaseModel):
    id: str
    state: Literal["granted", "denied", "default"]
    effective: bool
    reason: str
    toggleable: bool
    options: dict[str, Any]
    notice_version: str
    current_notice_version: str
    updated_at: datetime | None
    source: str | None
    expires_at: datetime | None


class PermissionsOut(BaseModel):
    subject: str
    permissions: list[PermissionOut]


class PermissionChangeOut(PermissionOut):
    event_id: str | None
    changed: bool


class PermissionIn(_In):
    state: ChoiceLiteral
    options: Options = Field(default_factory=dict, max_length=20)
    notice_version: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    expires_at: IsoDateTime | None = Field(
        default=None, description="For a time-limited grant: when it stops counting (UTC)."
    )
    duration: Literal["once"] | None = Field(
        default=None, description='"once": a grant for this time only (one hour).'
    )
    days: StrictInt | None = Field(default=None, ge=1, le=3650, description="A grant for N days.")
    locale: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] | None = None

    @model_validator(mode="after")
    def _aware(self) -> PermissionIn:
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2026-12-01T00:00:00Z)")
        limits = [x for x in (self.expires_at, self.duration, self.days) if x is not None]
        if len(limits) > 1:
            raise ValueError("give at most one of expires_at, duration and days")
        if limits and self.state != "granted":
            raise ValueError("only a grant can be time-limited")
        return self


class PermissionsPatchIn(_In):
    set: dict[Name, ChoiceLiteral] | None = Field(default=None, max_length=1000)
    notice_versions: (
        dict[Name, Annotated[str, StringConstraints(min_length=1, max_length=40)]] | None
    ) = Field(
        default=None,
        max_length=1000,
        description=(
            "For each consent permission granted (in `set`, or by `all`: granted): the notice "
            "version shown."
        ),
    )
    all: ChoiceLiteral | None = None
    locale: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> PermissionsPatchIn:
        if (self.set is None) == (self.all is None):
            raise ValueError('send exactly one of "set" or "all"')
        if self.set is not None and not self.set:
            raise ValueError('"set" is empty')
        return self


class PermissionsPatchOut(BaseModel):
    subject: str
    changed: list[str]
    event_ids: list[str]
    permissions: list[PermissionChangeOut]


class EventOut(BaseModel):
    event_id: str
    seq: int
    kind: str
    permission: str
    state: str
    options: dict[str, Any]
    notice_version: str
    locale: str | None
    source: str
    channel: str | None
    occurred_at: datetime
    expires_at: datetime | None
    prev_hash: str
    hash: str


class HistoryOut(BaseModel):
    subject: str
    events: list[EventOut]
    next_cursor: str | None


class DecisionIn(_In):
    subject: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    purpose: Name
    categories: list[Name] = Field(min_length=1, max_length=50)
    recipient: Name | None = None
    device: Name | None = None


class DecisionOut(BaseModel):
    allowed: bool
    reason: str
    permission: str | None


class DecisionBatchIn(_In):
    checks: list[DecisionIn] = Field(min_length=1)


class DecisionBatchOut(BaseModel):
    results: list[DecisionOut]


OsValue = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class DeviceIn(_In):
    platform: Literal["android", "ios", "web"]
    app_version: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    os_permissions: dict[Name, OsValue] = Field(default_factory=dict, max_length=50)


class DeviceOut(BaseModel):
    device_id: str
    platform: str
    app_version: str
    os_permissions: dict[str, str]
    updated_at: datetime


class DevicesOut(BaseModel):
    subject: str
    devices: list[DeviceOut]
