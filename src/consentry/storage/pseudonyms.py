"""The ledger's pseudonym for a subject: a random reference, linked to the id by one row.

A chain is named by ``subject_ref``, 32 random bytes (hex) drawn when the subject is first
written, and never by a function of the platform's id. The only link between the two is the
``subject_id`` column of the chain's ``subjects`` row; erasure clears it in the transaction that
deletes the subject's sealing key, so afterwards nothing computed from the id (plain or
domain-separated hashes, a MAC under any server key) finds the old chain, which still verifies.
A later write with the same id finds no link and starts a new, empty chain.

Every lookup of a subject's reference goes through this module: ``resolve`` for reads (None
when the id has no chain), ``resolve_or_create`` inside a write transaction. The change path
(``Backend.current``) folds the same lookup into its one read statement (``ref_where``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, ScalarSelect, insert, select

from consentry.domain.events import GENESIS
from consentry.storage.tables import subjects

_CHUNK = 500  # ids per IN list (well under SQLite's bound on parameters)


def new_ref() -> str:
    """A fresh reference for a new chain: no function of anything but the random source."""
    return secrets.token_hex(32)


def ref_of(subject_id: str) -> ScalarSelect[Any]:
    """The reference of the live chain of ``subject_id``, as a scalar subquery (NULL: none)."""
    return (
        select(subjects.c.subject_ref).where(subjects.c.subject_id == subject_id).scalar_subquery()
    )


def resolve(conn: Connection, subject_id: str) -> str | None:
    """The reference of the subject's live chain, or None (never written, or erased)."""
    found = conn.execute(
        select(subjects.c.subject_ref).where(subjects.c.subject_id == subject_id)
    ).scalar()
    return str(found) if found is not None else None


def resolve_many(conn: Connection, subject_ids: Iterable[str]) -> dict[str, str]:
    """The references of the live chains of several subjects, in a few statements; an id
    without a live chain is absent from the answer."""
    ids = list(subject_ids)
    found: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(subjects.c.subject_id, subjects.c.subject_ref).where(
                subjects.c.subject_id.in_(ids[start : start + _CHUNK])
            )
        )
        found.update({str(sid): str(ref) for sid, ref in rows})
    return found


def resolve_or_create(conn: Connection, subject_id: str, now: datetime) -> str:
    """The subject's reference; a chain without events yet (head at genesis) when there is
    none. Call inside a write transaction: a concurrent creator fails on the unique id, and
    the write is retried."""
    ref = resolve(conn, subject_id)
    if ref is not None:
        return ref
    ref = new_ref()
    conn.execute(
        insert(subjects).values(
            subject_ref=ref,
            subject_id=subject_id,
            jurisdiction=None,
            head_seq=0,
            head_hash=GENESIS,
            created_at=now,
            updated_at=now,
        )
    )
    return ref
