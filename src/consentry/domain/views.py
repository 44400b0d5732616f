"""One permission as a subject has it now, and its JSON form. Pure values.

What the API, the page and the evidence report show of a permission, and what an idempotent
change keeps as its answer (``services.idempotency``): one field list, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consentry.domain.catalogue_entries import Permission
from consentry.domain.rules import evaluate
from consentry.domain.state import Choice, SubjectState


@dataclass(frozen=True, slots=True)
class PermissionView:
    """One permission as a subject has it now: their choice (if any) and its effect."""

    id: str
    state: str  # granted | denied | default
    effective: bool
    reason: str
    toggleable: bool
    notice_version: str
    current_notice_version: str
    options: Mapping[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None
    source: str | None = None
    expires_at: datetime | None = None
    event_id: str | None = None


def view(
    perm: Permission, choice: Choice | None, state: SubjectState, now: datetime
) -> PermissionView:
    result = evaluate(perm, choice, state.jurisdiction, now)
    current = perm.notice.version
    if choice is None:
        return PermissionView(
            id=perm.id,
            state="default",
            effective=result.allowed,
            reason=result.reason.value,
            toggleable=perm.toggleable,
            notice_version=current,
            current_notice_version=current,
        )
    return PermissionView(
        id=perm.id,
        state=choice.state.value,
        effective=result.allowed,
        reason=result.reason.value,
        toggleable=perm.toggleable,
        notice_version=choice.notice_version,
        current_notice_version=current,
        options=dict(choice.options),
        updated_at=choice.updated_at,
        source=choice.source,
        expires_at=choice.expires_at,
        event_id=choice.event_id,
    )


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def view_to_json(v: PermissionView) -> dict[str, Any]:
    return {
        "id": v.id,
        "state": v.state,
        "effective": v.effective,
        "reason": v.reason,
        "toggleable": v.toggleable,
        "options": dict(v.options),
        "notice_version": v.notice_version,
        "current_notice_version": v.current_notice_version,
        "updated_at": _dt(v.updated_at),
        "source": v.source,
        "expires_at": _dt(v.expires_at),
        "event_id": v.event_id,
    }


def view_from_json(e: Mapping[str, Any]) -> PermissionView:
    """``view_to_json`` read back."""
    return PermissionView(
        id=e["id"],
        state=e["state"],
        effective=e["effective"],
        reason=e["reason"],
        toggleable=e["toggleable"],
        notice_version=e["notice_version"],
        current_notice_version=e["current_notice_version"],
        options=e["options"],
        updated_at=_parse_dt(e["updated_at"]),
        source=e["source"],
        expires_at=_parse_dt(e["expires_at"]),
        event_id=e["event_id"],
    )
