"""Changing a subject's permissions: the one command path of the API, the page, the banner and
the CLI, so a toggle on the page and a PUT on the API are the same code and leave the same proof.

A change is planned by ``domain.planning`` against what it read of the subject and written by
``storage.changes`` in one transaction (or one statement, see ``change_on_loop``), retried when
another writer moved the subject's chain first. Reads are ``queries``; decisions ``decisions``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from consentry import crypto
from consentry.domain import planning
from consentry.domain.catalogue_entries import Permission
from consentry.domain.decisions import CatalogueIndex
from consentry.domain.planning import Change, ChangeOutcome, Context, Seal
from consentry.domain.state import ChoiceState
from consentry.services import idempotency as idempotent
from consentry.services._ledger_io import retrying, retrying_on_loop, utcnow
from consentry.services.idempotency import Idempotency
from consentry.services.keys import KeyCheck
from consentry.storage import changes as ledger_writes
from consentry.storage import repository as repo
from consentry.storage.database import Database
from consentry.storage.group_commit import GroupCommit


class CredentialRefused(Exception):
    """The service key is unknown, revoked or lacks the scope: nothing was written."""


@dataclass(eq=False)
class ConsentService:
    db: Database
    index: CatalogueIndex
    clock: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        # Plain changes go to the database's group commit (``_batched``). The others (sealed
        # personal fields, an idempotency record) on SQLite, whose writers queue for one lock
        # anyway, share one transaction and one commit, each in a savepoint of its own;
        # PostgreSQL runs them side by side on their own connections.
        self.group = GroupCommit(self.db) if self.db.backend.in_process else None

    def resolve(self, permission_id: str) -> Permission:
        return planning.permission_of(self.index.permissions, permission_id)

    def all_consents(self, state: ChoiceState) -> list[Change]:
        """ "Accept all" / "Refuse all": every consent permission (``planning.all_consents``)."""
        return planning.all_consents(self.index.catalogue, state)

    def opt_out_of_sale(self, subject_id: str, context: Context) -> ChangeOutcome:
        """Do not sell or share (CCPA), also what a Global Privacy Control signal asks for:
        withdraw every sale, sharing and cross-context advertising permission. Recording it
        again changes nothing, so honouring GPC on every request is cheap."""
        return self.change(subject_id, planning.sale_opt_out(self.index.catalogue), context)

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
        perms = [planning.checked(self.index.permissions, c) for c in changes]
        if _plain(changes, context, idempotency):
            return retrying(
                lambda: self._batched(subject_id, changes, perms, context, key).result()
            )
        return retrying(
            lambda: self._change_once(subject_id, changes, perms, context, idempotency, key)
        )

    def _batched(
        self,
        subject_id: str,
        changes: Sequence[Change],
        perms: Sequence[Permission],
        context: Context,
        key: KeyCheck | None,
    ) -> Future[ChangeOutcome]:
        """A plain change, handed to this process's group commit (``storage.change_batches``):
        read, planned and written with the changes queued beside it, in one commit."""
        return self.db.batcher().submit(*self._batch_job(subject_id, changes, perms, context, key))

    def _batch_job(
        self,
        subject_id: str,
        changes: Sequence[Change],
        perms: Sequence[Permission],
        context: Context,
        key: KeyCheck | None,
    ) -> tuple[ledger_writes.Ask, Callable[[ledger_writes.Current], planning.Planned], datetime]:
        """What the group commit reads for a plain change, how it plans it, and when."""
        now = self.clock()
        ask = ledger_writes.Ask(subject_id, [p.id for p in planning.unique(perms)], _hash_of(key))

        def plan(found: ledger_writes.Current) -> planning.Planned:
            _admit(found, key)
            return planning.plan(
                subject_id, found.ref, changes, perms, context, found, now, sealing=_no_sealing
            )

        return ask, plan, now

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
            conn, subject_id, [p.id for p in planning.unique(perms)], _hash_of(key)
        )
        ref = found.ref
        _admit(found, key)
        if idempotency is not None:
            replay = idempotent.replay(conn, idempotency)
            if replay is not None:
                return replay
        planned = planning.plan(
            subject_id,
            ref,
            changes,
            perms,
            context,
            found,
            now,
            sealing=_sealing(lambda: repo.subject_key(conn, ref, now)),
        )
        self.db.backend.write(conn, subject_id, found.head, planned.new, now, planned.projected)
        if idempotency is not None:
            idempotent.remember(conn, idempotency, planned.outcome, now, subject_id)
        return planned.outcome

    async def change_on_loop(
        self, subject_id: str, change: Change, context: Context, key: KeyCheck | None = None
    ) -> ChangeOutcome | None:
        """``change`` for one plain change, without leaving the event loop: it waits for its
        batch of the group commit (``_batched``) as the loop's own future. None when the
        change is not plain (``change`` does it)."""
        if not _plain([change], context, None):
            return None
        perms = [planning.checked(self.index.permissions, change)]

        async def once() -> ChangeOutcome:
            job = self._batch_job(subject_id, [change], perms, context, key)
            return await self.db.batcher().submit_on_loop(*job)

        return await retrying_on_loop(once)


def _plain(changes: Sequence[Change], context: Context, idempotency: Idempotency | None) -> bool:
    """A plain change (nothing to seal, no idempotency record) writes one statement, guarded by
    optimistic concurrency: on PostgreSQL its read and its write need no transaction."""
    return idempotency is None and not context.channel and not any(c.options for c in changes)


def _hash_of(key: KeyCheck | None) -> str | None:
    return key.key_hash if key is not None else None


def _admit(found: ledger_writes.Current, key: KeyCheck | None) -> None:
    if key is not None and not (found.key_scopes or frozenset()) & key.scopes:
        raise CredentialRefused()


def _sealing(key_of: Callable[[], bytes | None]) -> Seal:
    """Seals personal fields with the subject's key (crypto-shredding), asked for once: at the
    first event of the change that has any."""
    asked: list[bytes | None] = []

    def sealed(
        options: Mapping[str, Any], channel: str | None, aad: bytes
    ) -> tuple[dict[str, Any], str | None]:
        if not asked or asked[0] is None:
            asked[:] = [key_of()]
        key = asked[0]
        if key is None:
            return {}, None
        return (
            crypto.seal_options(key, options, aad),
            crypto.seal_text(key, channel, aad) if channel else None,
        )

    return sealed


def _no_sealing(
    options: Mapping[str, Any], channel: str | None, aad: bytes
) -> tuple[dict[str, Any], str | None]:
    raise AssertionError("a plain change seals nothing")
