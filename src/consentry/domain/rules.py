"""The rule for one permission: what a subject's choice (or silence) means under its legal basis.

Everything else (the HTTP decision point, the permissions page, the SDK replica) derives its
answers from :func:`classify` and :func:`effect`, so the rule is written exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum

from consentry.domain.catalogue_entries import Permission
from consentry.domain.catalogue_vocabulary import DefaultState, LegalBasis
from consentry.domain.jurisdictions import lookup_order
from consentry.domain.state import Choice, ChoiceState


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
    # An SDK replica that lost contact with the server for longer than its bound (fail-closed).
    STALE_REPLICA = "stale_replica"


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


class Code(IntEnum):
    """What a subject's latest choice on one permission amounts to at a given moment."""

    NONE = 0  # never chose: the jurisdiction default applies
    GRANTED = 1  # granted, unexpired, on a notice version the permission still accepts
    DENIED = 2  # withdrew, refused or objected
    STALE = 3  # granted on a notice that changed materially since
    EXPIRED = 4  # a time-limited grant whose time is up


def classify(perm: Permission, choice: Choice | None, now: datetime) -> Code:
    if choice is None:
        return Code.NONE
    if choice.state is ChoiceState.DENIED:
        return Code.DENIED
    if choice.expired(now):
        return Code.EXPIRED
    if not perm.notice.accepts(choice.notice_version):
        return Code.STALE
    return Code.GRANTED


def default_granted(perm: Permission, jurisdiction: str | None) -> bool:
    """The catalogue default for a subject who never chose: most specific key wins."""
    for key in lookup_order(jurisdiction):
        state = perm.defaults.get(key)
        if state is not None:
            return state is DefaultState.GRANTED
    return False


def effect(basis: LegalBasis, code: Code, default: bool) -> Evaluation:
    """The rule: deny by default; consent needs an explicit, unexpired grant on an accepted
    notice; legitimate interest allows until the subject objects; contract and legal
    obligation always allow."""
    if basis is LegalBasis.CONTRACT:
        return Evaluation(True, Reason.CONTRACT)
    if basis is LegalBasis.LEGAL_OBLIGATION:
        return Evaluation(True, Reason.LEGAL_OBLIGATION)
    if basis is LegalBasis.LEGITIMATE_INTEREST:
        if code is Code.DENIED:
            return Evaluation(False, Reason.OBJECTED)
        return Evaluation(True, Reason.LEGITIMATE_INTEREST)
    if code is Code.NONE:
        if default:
            return Evaluation(True, Reason.JURISDICTION_DEFAULT)
        return Evaluation(False, Reason.NO_CONSENT)
    if code is Code.DENIED:
        return Evaluation(False, Reason.DENIED)
    if code is Code.EXPIRED:
        return Evaluation(False, Reason.EXPIRED)
    if code is Code.STALE:
        return Evaluation(False, Reason.NOTICE_CHANGED)
    return Evaluation(True, Reason.CONSENT)


def evaluate(
    perm: Permission, choice: Choice | None, jurisdiction: str | None, now: datetime
) -> Evaluation:
    """The effective state of one permission, from the subject's choice or the default."""
    code = classify(perm, choice, now)
    default = code is Code.NONE and default_granted(perm, jurisdiction)
    return effect(perm.legal_basis, code, default)
