"""Signed checkpoints of the ledger, after Certificate Transparency's signed tree heads.

A checkpoint is a Merkle tree (RFC 6962 hashing, ``domain/merkle.py``) over every chain's head,
in reference order: leaf ``i`` is the 68 bytes ``ref (32) || head seq (4, big-endian) || head
hash (32)``. Its signed statement is the canonical JSON

    {"format": "consentry.checkpoint.v1", "number": N, "tree_size": n, "root": "<hex>",
     "created_at": "<ISO 8601>", "previous": "<SHA-256 hex of line N-1>" | null}

signed as a compact JWS (EdDSA, the receipt key). Line N of the published file is
``{"checkpoint": {...}, "jws": "..."}``; ``previous`` chains the lines, so a line edited,
removed or rolled back breaks what follows. ``ledger verify`` checks every chain against the
newest checkpoint's heads (a chain must still hold each recorded head: a rewrite, a truncation
with the head moved back and a deleted subject all show) and checkpoint N against N-1 (every
head of N-1 is in N at the same or a later seq of the same chain).
"""

from __future__ import annotations

import hashlib
import json
import struct
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consentry.domain import merkle
from consentry.services._ledger_io import utcnow
from consentry.services.receipt_signing import (
    ReceiptInvalid,
    ReceiptKeys,
    canonical_json,
    verify_jws,
)
from consentry.storage import checkpoints as rows
from consentry.storage import repository
from consentry.storage.database import Database

FORMAT = "consentry.checkpoint.v1"
LEAF = struct.Struct(">32sI32s")


class CheckpointInvalid(ValueError):
    """A checkpoint line that does not verify (signature, form or chaining)."""


@dataclass(frozen=True, slots=True)
class Leaf:
    ref: str
    seq: int
    hash: str


def pack(heads: Iterable[tuple[str, int, str]]) -> bytes:
    return bytes.fromhex("".join(f"{r}{s:08x}{h}" for r, s, h in heads))


def unpack(blob: bytes) -> list[Leaf]:
    return [Leaf(r.hex(), s, h.hex()) for r, s, h in LEAF.iter_unpack(blob)]


def leaf_hashes(blob: bytes) -> list[bytes]:
    sha = hashlib.sha256
    size = LEAF.size
    return [sha(b"\x00" + blob[i : i + size]).digest() for i in range(0, len(blob), size)]


def line_digest(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


def signed_line(statement: Mapping[str, Any], jws: str) -> str:
    return json.dumps({"checkpoint": statement, "jws": jws}, sort_keys=True, separators=(",", ":"))


def read_line(
    line: str, keys: Mapping[str, Ed25519PublicKey], previous: str | None
) -> dict[str, Any]:
    """The statement of one published line, checked: well formed, signed by one of ``keys``,
    and chained to the line before (``previous``: that line, None for the first)."""
    try:
        doc = json.loads(line)
        statement, jws = doc["checkpoint"], doc["jws"]
        _, payload = verify_jws(jws, keys)
    except (ValueError, KeyError, TypeError, ReceiptInvalid) as exc:
        raise CheckpointInvalid(f"does not verify: {exc}") from exc
    if not isinstance(statement, dict) or canonical_json(statement) != payload:
        raise CheckpointInvalid("the readable statement differs from the signed one")
    if statement.get("format") != FORMAT:
        raise CheckpointInvalid(f"unknown format {statement.get('format')!r}")
    expected = line_digest(previous) if previous is not None else None
    if statement.get("previous") != expected:
        raise CheckpointInvalid("does not follow the checkpoint before it (edited or removed)")
    return statement


@dataclass(frozen=True, slots=True)
class Created:
    number: int
    tree_size: int
    root: str
    line: str


# Given the newest stored checkpoint (None: there is none) and the tree size and root just
# computed: True to store nothing (``schedule.py``: nothing changed, or made this window).
Skip = Callable[[rows.CheckpointRow | None, int, str], bool]


def create(db: Database, keys: ReceiptKeys, clock: Callable[[], datetime] = utcnow) -> Created:
    """Compute, sign and store the next checkpoint over every chain's head."""
    made = create_unless(db, keys, lambda _newest, _size, _root: False, clock)
    if made is None:  # pragma: no cover - nothing skips
        raise CheckpointInvalid("no checkpoint was stored")
    return made


def create_unless(
    db: Database, keys: ReceiptKeys, skip: Skip, clock: Callable[[], datetime] = utcnow
) -> Created | None:
    """As ``create``, unless ``skip``, asked inside the write transaction that would store
    the checkpoint, says to store nothing (then None)."""
    if keys.signer is None:
        raise CheckpointInvalid("checkpoints are signed with the receipt key: set one")
    with db.read() as conn:
        blob = pack(rows.heads(conn))
    root = merkle.root(leaf_hashes(blob)).hex()
    size = len(blob) // LEAF.size
    with db.write() as conn:
        earlier = rows.all_checkpoints(conn)
        if skip(earlier[-1] if earlier else None, size, root):
            return None
        number = earlier[-1].number + 1 if earlier else 1
        now = clock()
        statement = {
            "format": FORMAT,
            "number": number,
            "tree_size": size,
            "root": root,
            "created_at": now.isoformat(),
            "previous": line_digest(earlier[-1].body) if earlier else None,
        }
        line = signed_line(statement, keys.sign(canonical_json(statement)))
        rows.save(conn, rows.CheckpointRow(number, size, root, now, line), blob)
    return Created(number, size, root, line)


def published(db: Database) -> list[str]:
    """Every checkpoint line, oldest first: the file to copy off-site."""
    with db.read() as conn:
        return [row.body for row in rows.all_checkpoints(conn)]


@dataclass(frozen=True, slots=True)
class Inclusion:
    line: str
    index: int
    leaf: Leaf
    path: list[str]


_newest: dict[str, tuple[int, str, bytes, list[str]]] = {}  # database url -> newest checkpoint


def _covering(db: Database, ref: str, seq: int) -> tuple[str, bytes, int] | None:
    """(line, heads, index of ``ref``) of the newest checkpoint, when its head of chain ``ref``
    is at ``seq`` or later (the chain then links an event at ``seq`` to that head)."""
    with db.read() as conn:
        log = rows.all_checkpoints(conn)
        if not log:
            return None
        newest = log[-1]
        cached = _newest.get(db.url)
        if cached is None or cached[0] != newest.number:
            blob = rows.leaves_of(conn, newest.number) or b""
            refs = [leaf.ref for leaf in unpack(blob)]
            cached = _newest[db.url] = (newest.number, newest.body, blob, refs)
    _, line, blob, refs = cached
    at = bisect_left(refs, ref)
    if at == len(refs) or refs[at] != ref:
        return None
    if LEAF.unpack_from(blob, at * LEAF.size)[1] < seq:
        return None
    return line, blob, at


def covering(db: Database, ref: str, seq: int) -> dict[str, Any] | None:
    """The signed statement of the newest checkpoint covering event ``seq`` of chain ``ref``."""
    found = _covering(db, ref, seq)
    if found is None:
        return None
    statement: dict[str, Any] = json.loads(found[0])["checkpoint"]
    return statement


def inclusion(db: Database, ref: str, seq: int) -> Inclusion | None:
    """The newest checkpoint covering event ``seq`` of chain ``ref``, with the audit path of
    the chain's head it recorded. None when no checkpoint covers it yet."""
    found = _covering(db, ref, seq)
    if found is None:
        return None
    line, blob, at = found
    r, s, h = LEAF.unpack_from(blob, at * LEAF.size)
    path = [p.hex() for p in merkle.audit_path(leaf_hashes(blob), at)]
    return Inclusion(line, at, Leaf(r.hex(), s, h.hex()), path)


def links(db: Database, ref: str, after: int, upto: int) -> list[tuple[int, str, str]]:
    """(seq, prev_hash, hash) of chain ``ref``'s events ``after`` < seq <= ``upto``: how an
    event's hash leads to a later head."""
    with db.read() as conn:
        page = repository.events_after(conn, ref, after, max(upto - after, 0))
    return [(e.seq, e.prev_hash, e.hash) for e in page]
