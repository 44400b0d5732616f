"""Reading what the first tab needs from the services: permissions, devices, jurisdiction,
opt-out deliveries and, for grants that auto-reset switched off, since when they were unused."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from consentry.domain.views import PermissionView
from consentry.http import gpc
from consentry.services.deliveries import DeliveryService
from consentry.web.pages import Web
from consentry.web.view_model import PageModel, build_page, status_of

HISTORY_SCAN = 500


def _grant_times(web: Web, subject: str, resets: dict[str, str]) -> dict[str, datetime]:
    """permission -> when it was last granted before the auto-reset event ``resets`` names."""
    found: dict[str, datetime] = {}
    passed: set[str] = set()
    cursor: str | None = None
    while len(found) < len(resets):
        page = web.container.queries.history(subject, HISTORY_SCAN, cursor)
        for event in page.events:  # newest first
            pid = event.permission_id
            if resets.get(pid) == event.event_id:
                passed.add(pid)
            elif pid in passed and pid not in found and event.state == "granted":
                found[pid] = event.occurred_at
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return found


def _unused_since(web: Web, subject: str, views: Sequence[PermissionView]) -> dict[str, datetime]:
    """For grants that auto-reset switched off: the later of their grant and their last use."""
    resets = {v.id: v for v in views if status_of(v) == "auto_reset" and v.event_id}
    if not resets:
        return {}
    granted = _grant_times(web, subject, {pid: str(v.event_id) for pid, v in resets.items()})
    since: dict[str, datetime] = {}
    for pid, view in resets.items():
        used = web.container.uses.last_used(subject, pid, before=view.updated_at)
        moments = [m for m in (granted.get(pid), used) if m is not None]
        if moments:
            since[pid] = max(moments)
    return since


def page_model(web: Web, subject: str) -> PageModel:
    """The first tab for ``subject``, from the services (read-only)."""
    container = web.container
    views = container.queries.permissions(subject)
    deliveries = DeliveryService(container.db, container.catalogue).for_subject(subject)
    return build_page(
        container.catalogue,
        views,
        container.devices.reported(subject),
        web.tr,
        jurisdiction=container.rights.jurisdiction(subject),
        deliveries=deliveries,
        unused_since=_unused_since(web, subject, views),
        gpc_signal=gpc.signal_sent(web.request.headers),
    )
