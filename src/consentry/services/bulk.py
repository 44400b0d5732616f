""" "Refuse all" and "Accept all", planned from where the subject stands now.

A bulk change is honest about what it changes: it asks for one event per permission whose
*effective* state moves (a default that was already off, refused again, changes nothing for the
customer, so it is not written, not counted and not sent to anyone as an opt-out).

- Refuse all covers everything the customer can refuse: every consent permission that is on
  (or still holds a grant, such as one waiting for re-consent after a changed notice), and an
  objection (GDPR Art. 21) to every legitimate-interest use that is on. What stays on is what
  a contract or the law requires.
- Accept all grants every consent permission that is off, on the notice version the customer
  is shown now, and withdraws objections; ``keep_off`` leaves some of them as they are
  ("Accept all except these").

Because only effective changes are written, the opt-outs that follow a refusal go only to
recipients to which data may have flowed (a grant existed, or a default or legitimate interest
allowed it). Pure.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_vocabulary import LegalBasis
from consentry.domain.planning import Change
from consentry.domain.state import ChoiceState
from consentry.domain.views import PermissionView


def refuse_all(catalogue: Catalogue, views: Sequence[PermissionView]) -> list[Change]:
    by_id = {v.id: v for v in views}
    changes = []
    for perm in catalogue.permissions:
        view = by_id.get(perm.id)
        if view is None or not perm.toggleable:
            continue
        if view.effective or view.state == ChoiceState.GRANTED.value:
            changes.append(Change(perm.id, ChoiceState.DENIED))
    return changes


def accept_all(
    catalogue: Catalogue, views: Sequence[PermissionView], keep_off: Collection[str] = ()
) -> list[Change]:
    by_id = {v.id: v for v in views}
    changes = []
    for perm in catalogue.permissions:
        view = by_id.get(perm.id)
        if view is None or not perm.toggleable or view.effective or perm.id in keep_off:
            continue
        if perm.legal_basis is LegalBasis.LEGITIMATE_INTEREST and view.state != "denied":
            continue  # nothing to withdraw
        changes.append(Change(perm.id, ChoiceState.GRANTED, notice_version=perm.notice.version))
    return changes


def plan(
    catalogue: Catalogue,
    views: Sequence[PermissionView],
    state: ChoiceState,
    keep_off: Collection[str] = (),
) -> list[Change]:
    if state is ChoiceState.DENIED:
        return refuse_all(catalogue, views)
    return accept_all(catalogue, views, keep_off)
