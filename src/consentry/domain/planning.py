"""Planning a change to a subject's permissions. Pure: no I/O, no storage.

A change is planned against what it read of the subject (``Prior``: the chain's head, the
jurisdiction, the current choices on the permissions it touches). The plan is the events to
append (one per permission whose choice actually moves, chained after the head), the choices
to project and the answer to give. Writing it is the services' and storage's business.

Also here: what a change may ask (``checked``), when a time-limited grant ends (``expiry``) and
the lists of changes behind "accept all" / "refuse all" (``all_consents``) and "do not sell or
share" (``sale_opt_out``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.catalogue_vocabulary import LegalBasis
from consentry.domain.errors import InvalidChange, NoticeOutdated, NotToggleable, UnknownPermission
from consentry.domain.events import Event, EventKind, choice_left, new_event_id, seal
from consentry.domain.state import Choice, ChoiceState, SubjectState
from consentry.domain.views import PermissionView, view


@dataclass(frozen=True, slots=True)
class Change:
    permission_id: str
    state: ChoiceState
    options: Mapping[str, Any] = field(default_factory=dict)
    notice_version: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """Where a change came from: recorded in the ledger as part of the proof."""

    source: str = "api"
    locale: str | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    entries: list[PermissionView]
    changed: list[str]
    replayed: bool = False


class Head(Protocol):
    """Where the subject's chain ends (``seq`` 0: no event yet)."""

    @property
    def seq(self) -> int: ...

    @property
    def hash(self) -> str: ...


class Prior(Protocol):
    """What a change read of the subject before planning: the head of its chain, its
    jurisdiction and its current choices on (at least) the permissions the change touches."""

    @property
    def head(self) -> Head: ...

    @property
    def jurisdiction(self) -> str | None: ...

    @property
    def choices(self) -> Mapping[str, Choice]: ...


# Seals a change's personal fields (options, channel) for the event with this associated data
# (its id): (sealed options, sealed channel). Asked only when there is something to seal.
Seal = Callable[[Mapping[str, Any], str | None, bytes], tuple[dict[str, Any], str | None]]


@dataclass(frozen=True, slots=True)
class Planned:
    new: list[Event]
    projected: list[Choice]
    outcome: ChangeOutcome


ONCE = timedelta(hours=1)


def expiry(
    expires_at: datetime | None, duration: str | None, days: int | None, now: datetime
) -> datetime | None:
    """When a time-limited grant stops counting: "once" is one hour (a session), or N days."""
    if duration == "once":
        return now + ONCE
    if days is not None:
        return now + timedelta(days=days)
    if expires_at is not None and expires_at <= now:
        raise InvalidChange("expires_at is in the past")
    return expires_at


def permission_of(permissions: Mapping[str, Permission], permission_id: str) -> Permission:
    perm = permissions.get(permission_id)
    if perm is None:
        raise UnknownPermission(permission_id)
    return perm


def checked(permissions: Mapping[str, Permission], change: Change) -> Permission:
    """The permission a change is about, when the change may be made: the permission exists,
    the subject may toggle it, and a grant was not given on an outdated notice."""
    perm = permission_of(permissions, change.permission_id)
    if not perm.toggleable:
        raise NotToggleable(perm.id, perm.legal_basis.value)
    shown = change.notice_version
    if change.state is ChoiceState.GRANTED and shown is not None and not perm.notice.accepts(shown):
        raise NoticeOutdated(perm.id, shown, perm.notice.version)
    return perm


def all_consents(catalogue: Catalogue, state: ChoiceState) -> list[Change]:
    """ "Accept all" / "Refuse all": every consent permission. Objecting to legitimate
    interest is its own, explicit act (GDPR Art. 21), so it is not swept in here."""
    return [
        Change(p.id, state) for p in catalogue.permissions if p.legal_basis is LegalBasis.CONSENT
    ]


def sale_opt_out(catalogue: Catalogue) -> list[Change]:
    """Do not sell or share (CCPA): withdraw every sale, sharing and cross-context advertising
    permission the subject may toggle."""
    return [
        Change(p.id, ChoiceState.DENIED)
        for p in catalogue.permissions
        if p.sale_or_sharing and p.toggleable
    ]


def unique(perms: Sequence[Permission]) -> list[Permission]:
    """Each permission once, in first-seen order."""
    return list({p.id: p for p in perms}.values())


def plan(
    subject_id: str,
    ref: str,
    changes: Sequence[Change],
    perms: Sequence[Permission],
    context: Context,
    prior: Prior,
    now: datetime,
    *,
    sealing: Seal,
) -> Planned:
    """The events a change appends after ``prior`` (one per permission whose choice it moves),
    the choices to project and the answer. ``perms``: the permission of each change, in order
    (``checked``). ``sealing`` seals the personal fields (options, channel) of an event; it is
    called only for an event that has some."""
    new: list[Event] = []
    choices = dict(prior.choices)
    prev_hash, seq = prior.head.hash, prior.head.seq
    touched: list[Choice] = []
    for change, perm in zip(changes, perms, strict=True):
        version = change.notice_version or perm.notice.version
        old = choices.get(perm.id)
        if old is not None and same(old, change, version, now):
            continue
        seq += 1
        event_id = new_event_id()
        options: dict[str, Any] = {}
        channel: str | None = None
        if change.options or context.channel:
            # Personal fields are sealed with the subject's key (crypto-shredding).
            options, channel = sealing(change.options, context.channel, event_id.encode())
        event = seal(
            event_id=event_id,
            subject_ref=ref,
            seq=seq,
            kind=EventKind.PERMISSION_GRANTED
            if change.state is ChoiceState.GRANTED
            else EventKind.PERMISSION_DENIED,
            permission_id=perm.id,
            state=change.state.value,
            notice_version=version,
            source=context.source,
            occurred_at=now,
            prev_hash=prev_hash,
            options=options,
            locale=context.locale,
            channel=channel,
            expires_at=change.expires_at,
        )
        prev_hash = event.hash
        new.append(event)
        # The options in plain: the event holds them sealed.
        choice = choice_left(event, change.options)
        choices[perm.id] = choice
        touched.append(choice)
    after = SubjectState(subject_id, prior.jurisdiction, choices)
    outcome = ChangeOutcome(
        entries=[view(p, choices.get(p.id), after, now) for p in unique(perms)],
        changed=[e.permission_id for e in new],
    )
    # The projection gets each permission's last choice.
    return Planned(new, list({c.permission_id: c for c in touched}.values()), outcome)


def same(old: Choice, change: Change, version: str, now: datetime) -> bool:
    """The change asks for what the choice already is (and it has not expired): no event."""
    return (
        old.state is change.state
        and old.notice_version == version
        and dict(old.options) == dict(change.options)
        and old.expires_at == change.expires_at
        and not old.expired(now)
    )
