"""The change messages: what the outbox carries to followers (the change feed, NATS, webhooks).

One message per outbox row, as canonical JSON (keys sorted, no spaces, UTF-8 as is): the
server writes them with ``encode`` and every reader (the relay, webhooks, the server's replica,
the SDK) reads them with ``decode``. Pure, so the SDK imports it too.

Kinds and their fields (the wire names):

- ``permission_granted`` / ``permission_denied`` (``PermissionChanged``): ``event_id``,
  ``subject``, ``subject_ref``, ``seq``, ``kind``, ``permission``, ``state``,
  ``notice_version``, ``source``, ``occurred_at`` and ``expires_at`` (ISO 8601 text or null);
- ``jurisdiction_set`` (``JurisdictionSet``): ``subject``, ``subject_ref``, ``jurisdiction``;
  no ledger event, so no ``seq``;
- ``subject_erased`` (``SubjectErased``): ``event_id``, ``subject_ref``, ``seq``, ``source``,
  ``occurred_at``: named by the chain's reference only (the id is gone);
- ``redacted`` (``Redacted``): ``subject_ref``: an earlier row of a subject erased since.

``decode`` is as lenient as the readers always were: rows written before a field existed
(``subject_ref``, for one) still read, and a kind it does not know reads as ``OtherChange``
(a follower moves that subject's ``seq`` on). What no reader can use is ``MalformedMessage``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PERMISSION_GRANTED = "permission_granted"
PERMISSION_DENIED = "permission_denied"
SUBJECT_ERASED = "subject_erased"
JURISDICTION_SET = "jurisdiction_set"
REDACTED = "redacted"


class MalformedMessage(ValueError):
    """Not a change message: not a JSON object, or a field a reader needs is missing or of
    the wrong type."""


@dataclass(frozen=True, slots=True)
class PermissionChanged:
    """A grant or a withdrawal appended to a subject's chain."""

    subject: str
    seq: int
    kind: str  # PERMISSION_GRANTED | PERMISSION_DENIED
    permission: str
    state: str
    notice_version: str
    subject_ref: str | None = None
    event_id: str | None = None
    source: str | None = None
    occurred_at: str | None = None
    expires_at: str | None = None


@dataclass(frozen=True, slots=True)
class JurisdictionSet:
    """The subject's jurisdiction changed (None: cleared); followers learn the new defaults."""

    subject: str
    jurisdiction: str | None
    subject_ref: str | None = None
    seq: None = field(default=None, init=False)  # no ledger event
    kind: str = field(default=JURISDICTION_SET, init=False)


@dataclass(frozen=True, slots=True)
class SubjectErased:
    """The erasure event, the last of a chain. ``subject``: only in rows written before the
    chain's reference was random (the notice then named the subject)."""

    subject_ref: str
    seq: int
    event_id: str | None = None
    source: str | None = None
    occurred_at: str | None = None
    subject: str | None = None
    kind: str = field(default=SUBJECT_ERASED, init=False)


@dataclass(frozen=True, slots=True)
class Redacted:
    """An earlier row of a subject erased since: its position stays, its content is gone."""

    subject_ref: str | None
    subject: None = field(default=None, init=False)
    seq: None = field(default=None, init=False)
    kind: str = field(default=REDACTED, init=False)


@dataclass(frozen=True, slots=True)
class OtherChange:
    """A kind this version does not know (written by a newer server): kept whole."""

    kind: str
    subject: str | None
    seq: int | None
    subject_ref: str | None
    fields: Mapping[str, Any]


Message = PermissionChanged | JurisdictionSet | SubjectErased | Redacted | OtherChange


def dumps(value: Mapping[str, Any]) -> str:
    """Canonical JSON: keys sorted, no spaces, UTF-8 as is (the outbox's stored form)."""
    if not value:
        return "{}"  # most changes' options: what json.dumps gives, without its work
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def to_wire(message: Message) -> dict[str, Any]:
    """The message as the JSON object it is stored and sent as."""
    if isinstance(message, PermissionChanged):
        return {
            "event_id": message.event_id,
            "subject": message.subject,
            "subject_ref": message.subject_ref,
            "seq": message.seq,
            "kind": message.kind,
            "permission": message.permission,
            "state": message.state,
            "notice_version": message.notice_version,
            "source": message.source,
            "occurred_at": message.occurred_at,
            "expires_at": message.expires_at,
        }
    if isinstance(message, JurisdictionSet):
        return {
            "kind": JURISDICTION_SET,
            "subject": message.subject,
            "subject_ref": message.subject_ref,
            "jurisdiction": message.jurisdiction,
        }
    if isinstance(message, SubjectErased):
        erased: dict[str, Any] = {
            "event_id": message.event_id,
            "subject_ref": message.subject_ref,
            "seq": message.seq,
            "kind": SUBJECT_ERASED,
            "source": message.source,
            "occurred_at": message.occurred_at,
        }
        if message.subject is not None:
            erased["subject"] = message.subject
        return erased
    if isinstance(message, Redacted):
        return {"kind": REDACTED, "subject_ref": message.subject_ref}
    return dict(message.fields)


def encode(message: Message) -> str:
    """The stored and sent text of a message."""
    return dumps(to_wire(message))


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise MalformedMessage(f"change message without a text {name!r}")
    return value


def _optional(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise MalformedMessage(f"change message whose {name!r} is not text")
    return value


def _seq(fields: Mapping[str, Any]) -> int:
    value = fields.get("seq")
    if isinstance(value, bool):
        raise MalformedMessage("change message whose 'seq' is not a number")
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise MalformedMessage("change message without a number 'seq'") from exc


def _quick_change(fields: Mapping[str, Any], kind: str) -> PermissionChanged | None:
    """A grant or withdrawal in the form the server writes, without the checks' calls (every
    follower decodes each one); None for any other form (``decode`` then checks field by
    field)."""
    get = fields.get
    subject, seq, permission = get("subject"), get("seq"), get("permission")
    state, version = get("state"), get("notice_version")
    rest = (get("subject_ref"), get("event_id"), get("source"), get("occurred_at"))
    expires = get("expires_at")
    if (
        type(subject) is str
        and type(seq) is int
        and type(permission) is str
        and type(state) is str
        and type(version) is str
        and all(type(v) is str for v in rest)
        and (expires is None or type(expires) is str)
    ):
        return PermissionChanged(subject, seq, kind, permission, state, version, *rest, expires)
    return None


def decode(data: str | bytes | Mapping[str, Any]) -> Message:
    """The message in ``data`` (its JSON text, or the object already parsed); MalformedMessage
    when it is none."""
    fields: Any = data
    if isinstance(data, (str, bytes)):
        try:
            fields = json.loads(data)
        except ValueError as exc:
            raise MalformedMessage("change message that is not JSON") from exc
    if type(fields) is not dict and not isinstance(fields, Mapping):
        raise MalformedMessage("change message that is not a JSON object")
    kind = fields.get("kind")
    if kind in (PERMISSION_GRANTED, PERMISSION_DENIED):
        quick = _quick_change(fields, kind)
        if quick is not None:
            return quick
    ref = _optional(fields, "subject_ref")
    if kind in (PERMISSION_GRANTED, PERMISSION_DENIED):
        return PermissionChanged(
            subject=_text(fields, "subject"),
            seq=_seq(fields),
            kind=kind,
            permission=_text(fields, "permission"),
            state=_text(fields, "state"),
            notice_version=_text(fields, "notice_version"),
            subject_ref=ref,
            event_id=_optional(fields, "event_id"),
            source=_optional(fields, "source"),
            occurred_at=_optional(fields, "occurred_at"),
            expires_at=_optional(fields, "expires_at"),
        )
    if kind == JURISDICTION_SET:
        return JurisdictionSet(
            subject=_text(fields, "subject"),
            jurisdiction=_optional(fields, "jurisdiction"),
            subject_ref=ref,
        )
    if kind == SUBJECT_ERASED:
        subject = _optional(fields, "subject")
        if ref is None and subject is None:
            raise MalformedMessage("erasure message naming no chain")
        return SubjectErased(
            subject_ref=ref or "",
            seq=_seq(fields),
            event_id=_optional(fields, "event_id"),
            source=_optional(fields, "source"),
            occurred_at=_optional(fields, "occurred_at"),
            subject=subject,
        )
    if kind == REDACTED:
        return Redacted(ref)
    if not isinstance(kind, str):
        raise MalformedMessage("change message without a text 'kind'")
    subject = _optional(fields, "subject")
    return OtherChange(
        kind=kind,
        subject=subject,
        seq=_seq(fields) if subject is not None else None,
        subject_ref=ref,
        fields=dict(fields),
    )
