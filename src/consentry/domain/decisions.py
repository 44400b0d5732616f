"""The decision rule: may this use of personal data happen now?

Deny by default. Every answer carries a reason. The same function runs in the server and in the
SDK replica, so there is one rule set and nothing to drift: the per-permission rule is
:func:`consentry.domain.rules.effect`, and a request is answered by
:func:`consentry.domain.compiled.decide_state` over the subject's packed state, here and in the
replica alike.
"""

from __future__ import annotations

from datetime import datetime

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.compiled import CompiledCatalogue, decide_state
from consentry.domain.rules import (
    Decision,
    DecisionRequest,
    Evaluation,
    Reason,
    evaluate,
)
from consentry.domain.state import SubjectState

__all__ = [
    "CatalogueIndex",
    "Decision",
    "DecisionRequest",
    "Evaluation",
    "Reason",
    "decide",
    "evaluate",
]


class CatalogueIndex:
    """The catalogue arranged for fast decisions: built once per catalogue."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.permissions = {p.id: p for p in catalogue.permissions}
        self.by_purpose: dict[str, list[Permission]] = {}
        for perm in catalogue.permissions:
            self.by_purpose.setdefault(perm.purpose, []).append(perm)
        self.device_requirements = {
            name: cat.device for name, cat in catalogue.categories.items() if cat.device
        }
        self.compiled = CompiledCatalogue(catalogue)


def _device_allows(
    index: CatalogueIndex, state: SubjectState, category: str, device: str | None
) -> bool:
    need = index.device_requirements.get(category)
    if need is None:
        return True
    if device is not None:
        reports = [state.devices[device]] if device in state.devices else []
    else:
        reports = list(state.devices.values())
    return any(r.os_permissions.get(need.permission) in need.allows for r in reports)


def decide(
    index: CatalogueIndex, state: SubjectState, request: DecisionRequest, now: datetime
) -> Decision:
    """Allow only when, for every requested category, a permission for this purpose and
    recipient covers it and is effective, and the device grants it where device data is used."""
    compiled = index.compiled
    plan = compiled.plan(request.purpose, request.categories, request.recipient)
    if isinstance(plan, Decision):
        return plan
    if request.device is not None and request.device not in state.devices:
        return Decision(False, Reason.UNKNOWN_DEVICE)
    packed = compiled.encode(state.choices, state.jurisdiction, now)
    device = request.device
    return decide_state(
        compiled,
        plan,
        packed,
        lambda category: _device_allows(index, state, category, device),
    )
