"""Use cases on a subject's permissions: read, change, history, decide, device reports.

API, page and CLI all go through this layer, so a toggle on the page and a PUT on the API are
the same code path and leave the same proof.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import Connection

from consentry import crypto
from consentry.domain.catalogue import LegalBasis, Permission
from consentry.domain.decisions import CatalogueIndex, Decision, DecisionRequest, decide, evaluate
from consentry.domain.errors import (
    IdempotencyMismatch,
    InvalidChange,
    NoticeOutdated,
    NotToggleable,
    UnknownPermission,
)
from consentry.domain.events import Event, EventKind, seal
from consentry.domain.state import Choice, ChoiceState, DeviceReport, SubjectState
from consentry.services._ledger_io import opened, retrying, retrying_on_loop, utcnow
from consentry.services.keys import KeyCheck
from consentry.storage import async_pg, pseudonyms
from consentry.storage import changes as ledger_writes
from consentry.storage import repository as repo
from consentry.storage.database import Database
from consentry.storage.group_commit import GroupCommit


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


class CredentialRefused(Exception):
    """The service key is unknown, revoked or lacks the scope: nothing was written."""


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
class Idempotency:
    credential: str
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    entries: list[PermissionView]
    changed: list[str]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class HistoryPage:
    events: list[Event]
    next_cursor: str | None


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


class ConsentService:
    def __init__(
        self,
        db: Database,
        index: CatalogueIndex,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.index = index
        self.clock = clock
        # On SQLite, whose writers queue for one lock anyway, concurrent changes of this
        # process share one transaction and one commit. PostgreSQL runs them side by side on
        # their own connections (one connection running a batch in turn was slower there).
        self.group = GroupCommit(db) if db.backend.in_process else None

    # -- reads -------------------------------------------------------------------------------
    def state(self, subject_id: str) -> SubjectState:
        with self.db.read() as conn:
            return repo.load_state(conn, subject_id)

    def chain_ref(self, subject_id: str) -> str | None:
        """The ledger's random reference of the subject's live chain (None: no chain yet)."""
        with self.db.read() as conn:
            return pseudonyms.resolve(conn, subject_id)

    def permissions(self, subject_id: str) -> list[PermissionView]:
        state = self.state(subject_id)
        now = self.clock()
        return [
            view(perm, state.choices.get(perm.id), state, now)
            for perm in self.index.catalogue.permissions
        ]

    def history(self, subject_id: str, limit: int = 50, cursor: str | None = None) -> HistoryPage:
        before: int | None = None
        if cursor is not None:
            if not cursor.isdigit():
                raise InvalidChange(f"invalid cursor {cursor!r}")
            before = int(cursor)
        with self.db.read() as conn:
            items = repo.history(conn, subject_id, limit + 1, before)
            key = repo.subject_key(conn, items[0].subject_ref) if items else None
        more = len(items) > limit
        items = [opened(e, key) for e in items[:limit]]
        return HistoryPage(items, str(items[-1].seq) if more and items else None)

    def event(self, subject_id: str, event_id: str) -> tuple[Event, Event | None] | None:
        """One of the subject's events, readable, with the previous event on the same
        permission (it tells a withdrawal from a refusal); None when the subject has none."""
        with self.db.read() as conn:
            found = repo.find_event(conn, subject_id, event_id)
            if found is None:
                return None
            previous = repo.previous_on_permission(conn, found) if found.permission_id else None
            key = repo.subject_key(conn, found.subject_ref)
        return opened(found, key), (opened(previous, key) if previous else None)

    def decide(self, request: DecisionRequest) -> Decision:
        return decide(self.index, self.state(request.subject), request, self.clock())

    def decide_many(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        now = self.clock()
        states: dict[str, SubjectState] = {}
        with self.db.read() as conn:
            for req in requests:
                if req.subject not in states:
                    states[req.subject] = repo.load_state(conn, req.subject)
        return [decide(self.index, states[r.subject], r, now) for r in requests]

    def decide_at(self, request: DecisionRequest, moment: datetime) -> Decision:
        """The answer as it would have been at ``moment``: choices rebuilt from the ledger.
        (Device grants and the jurisdiction are taken as they are now.)"""
        candidates = {p.id for p in self.index.by_purpose.get(request.purpose, ())}
        with self.db.read() as conn:
            state = repo.load_state(conn, request.subject)
            past = {
                pid: choice
                for pid in candidates
                if (choice := repo.choice_at(conn, request.subject, pid, moment)) is not None
            }
        then = SubjectState(state.subject_id, state.jurisdiction, past, state.devices)
        return decide(self.index, then, request, moment)

    # -- writes ------------------------------------------------------------------------------
    def resolve(self, permission_id: str) -> Permission:
        perm = self.index.permissions.get(permission_id)
        if perm is None:
            raise UnknownPermission(permission_id)
        return perm

    def all_consents(self, state: ChoiceState) -> list[Change]:
        """ "Accept all" / "Refuse all": every consent permission. Objecting to legitimate
        interest is its own, explicit act (GDPR Art. 21), so it is not swept in here."""
        return [
            Change(p.id, state)
            for p in self.index.catalogue.permissions
            if p.legal_basis is LegalBasis.CONSENT
        ]

    def opt_out_of_sale(self, subject_id: str, context: Context) -> ChangeOutcome:
        """Do not sell or share (CCPA), also what a Global Privacy Control signal asks for:
        withdraw every sale, sharing and cross-context advertising permission. Recording it
        again changes nothing, so honouring GPC on every request is cheap."""
        changes = [
            Change(p.id, ChoiceState.DENIED)
            for p in self.index.catalogue.permissions
            if p.sale_or_sharing and p.toggleable
        ]
        return self.change(subject_id, changes, context)

    def change(
        self,
        subject_id: str,
        changes: Sequence[Change],
        context: Context,
        idempotency: Idempotency | None = None,
        key: KeyCheck | None = None,
    ) -> ChangeOutcome:
        """Apply changes atomically: one event per permission whose state actually changes.

        ``key``: the writer's service key, checked by the change's own read (a revoked key
        writes nothing); CredentialRefused when it does not pass."""
        perms = [self._check(c) for c in changes]
        return retrying(
            lambda: self._change_once(subject_id, changes, perms, context, idempotency, key)
        )

    def _check(self, change: Change) -> Permission:
        perm = self.resolve(change.permission_id)
        if not perm.toggleable:
            raise NotToggleable(perm.id, perm.legal_basis.value)
        shown = change.notice_version
        if (
            change.state is ChoiceState.GRANTED
            and shown is not None
            and not perm.notice.accepts(shown)
        ):
            raise NoticeOutdated(perm.id, shown, perm.notice.version)
        return perm

    def _change_once(
        self,
        subject_id: str,
        changes: Sequence[Change],
        perms: Sequence[Permission],
        context: Context,
        idempotency: Idempotency | None,
        key: KeyCheck | None = None,
    ) -> ChangeOutcome:
        def work(conn: Connection) -> ChangeOutcome:
            return self._change_in(conn, subject_id, changes, perms, context, idempotency, key)

        if self.group is not None:
            return self.group.run(work)
        with self.db.write(statements_commit=_plain(changes, context, idempotency)) as conn:
            return work(conn)

    def _change_in(
        self,
        conn: Connection,
        subject_id: str,
        changes: Sequence[Change],
        perms: Sequence[Permission],
        context: Context,
        idempotency: Idempotency | None,
        key: KeyCheck | None,
    ) -> ChangeOutcome:
        now = self.clock()
        # In the change's transaction, or in a savepoint of a batch's (GroupCommit).
        # The chain's reference and head, the jurisdiction, the choices this change touches
        # and the writer's key.
        found = self.db.backend.current(
            conn, subject_id, [p.id for p in _unique(perms)], _hash_of(key)
        )
        ref = found.ref
        _admit(found, key)
        if idempotency is not None:
            replay = self._replay(conn, idempotency)
            if replay is not None:
                return replay
        planned = _plan(
            subject_id,
            ref,
            changes,
            perms,
            context,
            found,
            now,
            sealing=lambda: repo.subject_key(conn, ref, now),
        )
        self.db.backend.write(conn, subject_id, found.head, planned.new, now, planned.projected)
        if idempotency is not None:
            repo.save_idempotent(
                conn,
                idempotency.credential,
                idempotency.key,
                idempotency.fingerprint,
                outcome_to_json(planned.outcome),
                now,
                subject_id,
            )
        return planned.outcome

    async def change_on_loop(
        self, subject_id: str, change: Change, context: Context, key: KeyCheck | None = None
    ) -> ChangeOutcome | None:
        """``change`` for one plain change, without leaving the event loop: its read and its
        one write statement on an async connection of the database's own (PostgreSQL). None
        when the database has none or the change is not plain (``change`` does it)."""
        pool = self.db.async_pool()
        if pool is None or not _plain([change], context, None):
            return None
        perms = [self._check(change)]

        async def once() -> ChangeOutcome:
            now = self.clock()
            async with pool.connection() as conn:
                found = await async_pg.current(
                    conn, subject_id, [change.permission_id], _hash_of(key)
                )
                _admit(found, key)
                planned = _plan(
                    subject_id, found.ref, [change], perms, context, found, now, sealing=_no_sealing
                )
                await async_pg.write(
                    conn, subject_id, found.head, planned.new, now, planned.projected
                )
            return planned.outcome

        outcome = await retrying_on_loop(once)
        for work in self.db.after_commit():  # blocking work of the commit's listeners
            await to_thread.run_sync(work)
        return outcome

    def _replay(self, conn: Connection, idem: Idempotency) -> ChangeOutcome | None:
        found = repo.find_idempotent(conn, idem.credential, idem.key)
        if found is None:
            return None
        fingerprint, body = found
        if fingerprint != idem.fingerprint:
            raise IdempotencyMismatch()
        return outcome_from_json(body)

    def report_device(
        self,
        subject_id: str,
        device_id: str,
        platform: str,
        app_version: str,
        os_permissions: Mapping[str, str],
    ) -> DeviceReport:
        known = {d.id: d for d in self.index.catalogue.device_permissions}
        for name, value in os_permissions.items():
            spec = known.get(name)
            if spec is None:
                raise InvalidChange(
                    f"unknown OS permission {name!r}; known: {', '.join(sorted(known))}"
                )
            if value not in spec.values:
                raise InvalidChange(
                    f"OS permission {name!r} cannot be {value!r}; one of: {', '.join(spec.values)}"
                )
        report = DeviceReport(device_id, platform, app_version, dict(os_permissions), self.clock())
        with self.db.write() as conn:
            repo.save_device(conn, report, subject_id)
        return report

    def devices(self, subject_id: str) -> list[DeviceReport]:
        with self.db.read() as conn:
            return repo.list_devices(conn, subject_id)


def _plain(changes: Sequence[Change], context: Context, idempotency: Idempotency | None) -> bool:
    """A plain change (nothing to seal, no idempotency record) writes one statement, guarded by
    optimistic concurrency: on PostgreSQL its read and its write need no transaction."""
    return idempotency is None and not context.channel and not any(c.options for c in changes)


def _hash_of(key: KeyCheck | None) -> str | None:
    return key.key_hash if key is not None else None


def _admit(found: ledger_writes.Current, key: KeyCheck | None) -> None:
    if key is not None and not (found.key_scopes or frozenset()) & key.scopes:
        raise CredentialRefused()


def _no_sealing() -> bytes:
    raise AssertionError("a plain change seals nothing")


@dataclass(frozen=True, slots=True)
class _Planned:
    new: list[Event]
    projected: list[Choice]
    outcome: ChangeOutcome


def _plan(
    subject_id: str,
    ref: str,
    changes: Sequence[Change],
    perms: Sequence[Permission],
    context: Context,
    found: ledger_writes.Current,
    now: datetime,
    *,
    sealing: Callable[[], bytes | None],
) -> _Planned:
    """The events a change appends after ``found`` (one per permission whose choice it moves),
    the choices to project and the answer. ``sealing`` gives the subject's key, asked for only
    when a change has personal fields (options, channel) to seal."""
    new: list[Event] = []
    choices = dict(found.choices)
    prev_hash, seq = found.head.hash, found.head.seq
    key: bytes | None = None
    touched: list[Choice] = []
    for change, perm in zip(changes, perms, strict=True):
        version = change.notice_version or perm.notice.version
        old = choices.get(perm.id)
        if old is not None and _same(old, change, version, now):
            continue
        seq += 1
        event_id = str(uuid.uuid4())
        aad = event_id.encode()
        if key is None and (change.options or context.channel):
            key = sealing()
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
            # Personal fields are sealed with the subject's key (crypto-shredding).
            options=crypto.seal_options(key, change.options, aad) if key else {},
            locale=context.locale,
            channel=crypto.seal_text(key, context.channel, aad)
            if key and context.channel
            else None,
            expires_at=change.expires_at,
        )
        prev_hash = event.hash
        new.append(event)
        choice = _choice_of(event, change.options)
        choices[perm.id] = choice
        touched.append(choice)
    after = SubjectState(subject_id, found.jurisdiction, choices)
    outcome = ChangeOutcome(
        entries=[view(p, choices.get(p.id), after, now) for p in _unique(perms)],
        changed=[e.permission_id for e in new],
    )
    # The projection gets each permission's last choice.
    return _Planned(new, list({c.permission_id: c for c in touched}.values()), outcome)


def _same(old: Choice, change: Change, version: str, now: datetime) -> bool:
    return (
        old.state is change.state
        and old.notice_version == version
        and dict(old.options) == dict(change.options)
        and old.expires_at == change.expires_at
        and not old.expired(now)
    )


def _choice_of(event: Event, options: Mapping[str, Any]) -> Choice:
    return Choice(
        permission_id=event.permission_id,
        state=ChoiceState(event.state),
        notice_version=event.notice_version,
        updated_at=event.occurred_at,
        source=event.source,
        options=dict(options),
        expires_at=event.expires_at,
        event_id=event.event_id,
    )


def _unique(perms: Sequence[Permission]) -> list[Permission]:
    return list({p.id: p for p in perms}.values())


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


def outcome_to_json(outcome: ChangeOutcome) -> dict[str, Any]:
    return {"entries": [view_to_json(v) for v in outcome.entries], "changed": outcome.changed}


def outcome_from_json(body: Mapping[str, Any]) -> ChangeOutcome:
    entries = [
        PermissionView(
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
        for e in body["entries"]
    ]
    return ChangeOutcome(entries, list(body["changed"]), replayed=True)
