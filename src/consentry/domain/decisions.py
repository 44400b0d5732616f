"""The decision rule: may this use of personal data happen now?

Deny by default. Every answer carries a reason. The same function runs in the server and in the
SDK replica, so there is one rule set and nothing to drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from consentry.domain.catalogue import Catalogue, DefaultState, LegalBasis, Permission
from consentry.domain.jurisdictions import lookup_order
from consentry.domain.state import Choice, ChoiceState, SubjectState


class Reason(StrEnum):
    # allowed
    CONSENT = "consent"
    JURISDICTION_DEFAULT = "jurisdiction_default"
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    # denied
    NO_CONSENT = "no_consent"
    DENIED = "denied"
    EXPIRED = "expired"
    NOTICE_CHANGED = "notice_changed"
    OBJECTED = "objected"
    NOT_COVERED = "not_covered"
    DEVICE_NOT_GRANTED = "device_not_granted"
    NO_CATEGORIES = "no_categories"
    UNKNOWN_PURPOSE = "unknown_purpose"
    UNKNOWN_CATEGORY = "unknown_category"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    UNKNOWN_DEVICE = "unknown_device"


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    subject: str
    purpose: str
    categories: tuple[str, ...]
    recipient: str | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason
    permission: str | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One permission's effective state for one subject."""

    allowed: bool
    reason: Reason


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


def evaluate(
    perm: Permission, choice: Choice | None, jurisdiction: str | None, now: datetime
) -> Evaluation:
    """The effective state of one permission, from the subject's choice or the default."""
    basis = perm.legal_basis
    if basis is LegalBasis.CONTRACT:
        return Evaluation(True, Reason.CONTRACT)
    if basis is LegalBasis.LEGAL_OBLIGATION:
        return Evaluation(True, Reason.LEGAL_OBLIGATION)
    if basis is LegalBasis.LEGITIMATE_INTEREST:
        if choice is not None and choice.state is ChoiceState.DENIED:
            return Evaluation(False, Reason.OBJECTED)
        return Evaluation(True, Reason.LEGITIMATE_INTEREST)
    if choice is None:
        return _default(perm, jurisdiction)
    if choice.state is ChoiceState.DENIED:
        return Evaluation(False, Reason.DENIED)
    if choice.expired(now):
        return Evaluation(False, Reason.EXPIRED)
    if not perm.notice.accepts(choice.notice_version):
        return Evaluation(False, Reason.NOTICE_CHANGED)
    return Evaluation(True, Reason.CONSENT)


def _default(perm: Permission, jurisdiction: str | None) -> Evaluation:
    for key in lookup_order(jurisdiction):
        state = perm.defaults.get(key)
        if state is not None:
            if state is DefaultState.GRANTED:
                return Evaluation(True, Reason.JURISDICTION_DEFAULT)
            break
    return Evaluation(False, Reason.NO_CONSENT)


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
    catalogue = index.catalogue
    if request.purpose not in catalogue.purposes:
        return Decision(False, Reason.UNKNOWN_PURPOSE)
    if not request.categories:
        return Decision(False, Reason.NO_CATEGORIES)
    for category in request.categories:
        if category not in catalogue.categories:
            return Decision(False, Reason.UNKNOWN_CATEGORY)
    if request.recipient is not None and request.recipient not in catalogue.recipients:
        return Decision(False, Reason.UNKNOWN_RECIPIENT)
    if request.device is not None and request.device not in state.devices:
        return Decision(False, Reason.UNKNOWN_DEVICE)
    candidates = [
        p
        for p in index.by_purpose.get(request.purpose, ())
        if request.recipient is None or request.recipient in p.recipients
    ]
    first: Decision | None = None
    for category in request.categories:
        verdict = _cover(candidates, state, category, now)
        if not verdict.allowed:
            return verdict
        if not _device_allows(index, state, category, request.device):
            return Decision(False, Reason.DEVICE_NOT_GRANTED, verdict.permission)
        first = first or verdict
    assert first is not None  # categories is non-empty
    return first


def _cover(
    candidates: Sequence[Permission], state: SubjectState, category: str, now: datetime
) -> Decision:
    refusal: Decision | None = None
    for perm in candidates:
        if category not in perm.categories:
            continue
        result = evaluate(perm, state.choices.get(perm.id), state.jurisdiction, now)
        if result.allowed:
            return Decision(True, result.reason, perm.id)
        refusal = refusal or Decision(False, result.reason, perm.id)
    return refusal or Decision(False, Reason.NOT_COVERED)
