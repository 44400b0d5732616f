"""Pure rules of the first-visit choice: when to ask, what the banner says, how a device's
choices merge into an account on sign-in.

When to ask: a consent permission the visitor never chose, whose choice was made on a notice
the current one does not accept (a material change), whose grant has expired, or whose refusal
is older than 12 months (DMA Art. 5(2): a refused purpose is not asked again within a year).

The merge rule, per consent permission the device chose: if the account never chose it, the
device's choice is taken; if the account chose it later than the device, the account's choice
stands; otherwise the more protective of the two (a refusal) wins.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.catalogue_vocabulary import LegalBasis, RecipientKind
from consentry.domain.state import ChoiceState
from consentry.domain.views import PermissionView

REASK_AFTER = timedelta(days=365)


def banner_permissions(catalogue: Catalogue) -> list[Permission]:
    """What "Accept all" / "Refuse all" cover: every consent permission."""
    return [p for p in catalogue.permissions if p.legal_basis is LegalBasis.CONSENT]


def partner_count(catalogue: Catalogue) -> int:
    """Third parties the visitor's data may reach: every recipient but the controller."""
    return sum(1 for r in catalogue.recipients.values() if r.kind is not RecipientKind.CONTROLLER)


def needs_asking(catalogue: Catalogue, views: Iterable[PermissionView], now: datetime) -> list[str]:
    """The consent permissions the banner must ask about now (empty: no banner)."""
    by_id = {v.id: v for v in views}
    ask = []
    for perm in banner_permissions(catalogue):
        v = by_id.get(perm.id)
        if v is None or v.state == "default" or v.updated_at is None:
            ask.append(perm.id)
        elif not perm.notice.accepts(v.notice_version):
            ask.append(perm.id)  # material change since the choice
        elif v.state == "granted" and v.expires_at is not None and v.expires_at <= now:
            ask.append(perm.id)
        elif v.state == "denied" and v.updated_at <= now - REASK_AFTER:
            ask.append(perm.id)
    return ask


def banner_version(catalogue: Catalogue, texts: Mapping[str, str]) -> str:
    """Names what the banner showed: its wording and every notice version it covers. Recorded
    with each choice made from it (the ledger event's channel)."""
    body = {
        "texts": dict(texts),
        "notices": {p.id: p.notice.version for p in banner_permissions(catalogue)},
        "partners": partner_count(catalogue),
    }
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
    return "banner-" + hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Merged:
    permission_id: str
    state: ChoiceState
    why: str  # "device" (account never chose) | "protective" (a refusal wins)


def merge_plan(
    catalogue: Catalogue, device: Iterable[PermissionView], account: Iterable[PermissionView]
) -> list[Merged]:
    """The changes that merging a device's choices into an account makes (see module doc)."""
    theirs = {v.id: v for v in account}
    plan = []
    for perm_id, dev in ((v.id, v) for v in device):
        perm = catalogue.permission(perm_id)
        if perm is None or perm.legal_basis is not LegalBasis.CONSENT:
            continue
        if dev.state == "default" or dev.updated_at is None:
            continue
        acc = theirs.get(perm_id)
        if acc is None or acc.state == "default" or acc.updated_at is None:
            plan.append(Merged(perm_id, ChoiceState(dev.state), "device"))
        elif acc.updated_at > dev.updated_at:
            continue  # the customer chose later on the account
        elif dev.state == "denied" and acc.state != "denied":
            plan.append(Merged(perm_id, ChoiceState.DENIED, "protective"))
    return plan
