"""Global Privacy Control as a use case: a browser's GPC signal opts the subject out of sale
and sharing.

California (11 CCR § 7025) requires a business that sells or shares to treat the signal as a
valid request to opt out, for the browser and the signed-in consumer, without asking for more.
The opt-out is ``ConsentService.opt_out_of_sale`` with source "gpc": ordinary
``permission_denied`` events in the subject's hash chain, so the proof is the ledger itself.

Honouring is read-first: a write happens only while some sale or sharing permission is still in
effect, so a browser that sends the signal on every request costs one write, once. The signal
wins over an earlier grant (§ 7025(c)(3)); a customer who wants to allow sale again does so from
a browser that does not send it.

Reading the ``Sec-GPC`` header is the HTTP layer's (``http/gpc.py``); this module knows only
the signal's value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from consentry.domain.planning import Context
from consentry.services.consents import ConsentService
from consentry.services.queries import SubjectQueries

log = logging.getLogger("consentry.gpc")
SOURCE = "gpc"


def gpc_requested(value: str | None) -> bool:
    """Only the exact value "1" is a GPC signal ("0", "true", " 1" are not)."""
    return value == "1"


@dataclass(frozen=True, slots=True)
class GpcOutcome:
    """``requested``: the browser sent GPC. ``changed``: permissions this request withdrew
    (empty when an earlier request already did). When requested, nothing that is sale or
    sharing is in effect for the subject afterwards."""

    requested: bool
    changed: tuple[str, ...] = ()


def _sale_or_sharing_in_effect(queries: SubjectQueries, subject_id: str) -> bool:
    perms = queries.index.permissions
    return any(
        view.effective
        for view in queries.permissions(subject_id)
        if (perm := perms.get(view.id)) is not None and perm.sale_or_sharing and perm.toggleable
    )


def honour_gpc(
    consents: ConsentService, queries: SubjectQueries, subject_id: str, signal: str | None
) -> GpcOutcome:
    """Apply a GPC signal for a known (signed-in) subject. Safe to call on every request."""
    if not gpc_requested(signal):
        return GpcOutcome(requested=False)
    if not _sale_or_sharing_in_effect(queries, subject_id):
        return GpcOutcome(requested=True)
    outcome = consents.opt_out_of_sale(subject_id, Context(source=SOURCE))
    if outcome.changed:
        log.info("GPC honoured: %d permission(s) withdrawn", len(outcome.changed))
    return GpcOutcome(requested=True, changed=tuple(outcome.changed))
