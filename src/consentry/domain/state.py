"""A subject's state: the choices they made and what their devices granted. Pure values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class ChoiceState(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"


class Source(StrEnum):
    WEB = "web"
    APP = "app"
    API = "api"
    GPC = "gpc"
    SYSTEM = "system"
    BANNER = "banner"
    DEVICE_MERGE = "device_merge"


@dataclass(frozen=True, slots=True)
class Choice:
    """The subject's latest explicit choice on one permission."""

    permission_id: str
    state: ChoiceState
    notice_version: str
    updated_at: datetime
    source: str
    options: Mapping[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    event_id: str = ""

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """What the OS or browser granted the app on one device, as the app reported it."""

    device_id: str
    platform: str
    app_version: str
    os_permissions: Mapping[str, str]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SubjectState:
    subject_id: str
    jurisdiction: str | None = None
    choices: Mapping[str, Choice] = field(default_factory=dict)
    devices: Mapping[str, DeviceReport] = field(default_factory=dict)
