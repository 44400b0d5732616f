"""Consent records from another platform, as ``consentry import`` reads them. Pure.

A record is one choice a customer made elsewhere: who, on which permission, granted or
denied, when, on which notice version, in which language, collected where (``source``), with
which options, and optionally the other platform's own id for it. ``check`` turns the fields of
one line into an ``ImportRecord`` or says, in one sentence, why the line cannot be imported.

``event_id_of`` names the ledger event a record becomes, deterministically (from its record id,
or from its content when it has none): importing the same record twice meets the same event id,
which is how a re-run or a resumed import writes each record exactly once.

``hash_of`` computes what ``events.recompute`` computes for such an event (the canonical JSON
and its SHA-256), and ``payload_of`` what ``messages.encode`` makes of its outbox message, from
text built once per (permission, state, notice version, locale, source) (``parts_of``) instead
of a sorted dict per event. Tests hold them equal to the live path's.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, NamedTuple

from consentry.domain.catalogue_entries import Permission

FIELDS = (
    "subject",
    "permission",
    "state",
    "time",
    "notice_version",
    "locale",
    "source",
    "options",
    "record_id",
)
REQUIRED = ("subject", "permission", "state", "time", "notice_version")
SOURCE_PREFIX = "import:"
# The ledger's source column holds 20 characters: "import:" and up to 13 of the name.
_SOURCE = re.compile(r"[a-z0-9][a-z0-9._-]{0,12}")
_KEY_DOMAIN = "consentry.import.v1"


class InvalidRecord(ValueError):
    """The line cannot be imported; the message says why (the caller adds the line number)."""


class ImportRecord(NamedTuple):
    subject: str
    permission: str
    state: str  # granted | denied
    time: datetime  # aware, UTC
    notice_version: str
    locale: str | None
    source: str  # the name after "import:"
    options: Mapping[str, Any]
    record_id: str | None
    event_id: str
    line: int  # where it was read (the first line of a CSV record)
    z: str  # ``iso_z(time)``


def _text(fields: Mapping[str, Any], name: str, limit: int, required: bool) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise InvalidRecord(f"{name} is missing")
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidRecord(f"{name} must be text, not {type(value).__name__}")
    if len(value) > limit:
        raise InvalidRecord(f"{name} is longer than {limit} characters")
    return value


def parse_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRecord(f"time {value!r} is not an ISO 8601 date and time") from exc
    if moment.tzinfo is None:
        raise InvalidRecord(f"time {value!r} has no UTC offset (add Z or +hh:mm)")
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def known_versions(perm: Permission) -> frozenset[str]:
    """Every notice version of ``perm`` the catalogue knows: current, compatible, kept wording."""
    notice = perm.notice
    return frozenset(
        (notice.version, *notice.compatible_versions, *(old.version for old in notice.history))
    )


class Checker:
    """Checks records against one catalogue and one moment ("now": no record may be later)."""

    def __init__(
        self, permissions: Mapping[str, Permission], now: datetime, default_source: str
    ) -> None:
        check_source(default_source)
        self.now = now
        self.default_source = default_source
        self._versions = {pid: known_versions(p) for pid, p in permissions.items()}
        self._toggleable = {pid: p.toggleable for pid, p in permissions.items()}
        self._sources: set[str] = set()

    def check(
        self, fields: Mapping[str, Any], line: int = 0, *, named: bool = True
    ) -> ImportRecord:
        """The record on one line; ``named=False`` leaves its event id empty (checking only)."""
        get = fields.get
        subject, pid, state, when, version = (
            get("subject"),
            get("permission"),
            get("state"),
            get("time"),
            get("notice_version"),
        )
        if not (
            type(subject) is str
            and type(pid) is str
            and type(state) is str
            and type(when) is str
            and type(version) is str
            and 0 < len(subject) <= 200
            and 0 < len(version) <= 40
            and 0 < len(when) <= 64
        ):
            subject = _text(fields, "subject", 200, True)
            pid = _text(fields, "permission", 100, True)
            state = _text(fields, "state", 20, True)
            when = _text(fields, "time", 64, True)
            version = _text(fields, "notice_version", 40, True)
        assert subject and pid and state and when and version  # required above
        versions = self._versions.get(pid)
        if versions is None:
            raise InvalidRecord(f"unknown permission {pid!r}")
        if not self._toggleable[pid]:
            raise InvalidRecord(f"permission {pid!r} is not a choice (its legal basis is not)")
        if state != "granted" and state != "denied":
            raise InvalidRecord(f"state {state!r} is not granted or denied")
        if state == "granted" and version not in versions:
            known = ", ".join(sorted(versions))
            raise InvalidRecord(
                f"grant of {pid!r} on notice version {version!r}, which the catalogue does not "
                f"know (known: {known})"
            )
        moment = parse_time(when)
        # The common form (2024-03-04T09:15:02Z or +00:00) gives its iso_z without a format.
        n = len(when)
        if (
            (n == 20 and when[19] == "Z" or n == 25 and when.endswith("+00:00"))
            and when[10] == "T"
            and when[13] == ":"
            and when[16] == ":"
            and not moment.microsecond
        ):
            z = when[:19] + ".000000Z"
        else:
            z = iso_z(moment)
        if moment > self.now:
            raise InvalidRecord(f"time {when!r} is in the future")
        locale = get("locale")
        if locale is not None and (type(locale) is not str or len(locale) > 10):
            locale = _text(fields, "locale", 10, False)
        locale = locale or None
        source = get("source") or self.default_source
        if source is not self.default_source and source not in self._sources:
            if not isinstance(source, str):
                raise InvalidRecord("source must be text")
            check_source(source)
            self._sources.add(source)
        options = get("options") or {}
        if type(options) is not dict:
            if isinstance(options, str):
                try:
                    options = json.loads(options)
                except ValueError as exc:
                    raise InvalidRecord("options is not valid JSON") from exc
            if not isinstance(options, dict):
                raise InvalidRecord("options must be an object")
        record_id = get("record_id")
        if record_id is not None and (type(record_id) is not str or not 0 < len(record_id) <= 200):
            record_id = _text(fields, "record_id", 200, False)
        event_id = (
            event_id_of(subject, pid, state, moment, version, locale, source, options, record_id)
            if named
            else ""
        )
        return ImportRecord(
            subject,
            pid,
            state,
            moment,
            version,
            locale,
            source,
            options,
            record_id,
            event_id,
            line,
            z,
        )


def check_source(name: str) -> None:
    if not _SOURCE.fullmatch(name):
        raise InvalidRecord(
            f"source {name!r} must be 1 to 13 characters: lower-case letters, digits, . _ -"
        )


def event_id_of(
    subject: str,
    permission: str,
    state: str,
    moment: datetime,
    version: str,
    locale: str | None,
    source: str,
    options: Mapping[str, Any],
    record_id: str | None,
) -> str:
    """The id of the event a record becomes: from the source and its record id when it has
    one, else from everything it says. Shaped as a UUID (version 5 bits)."""
    if record_id is not None:
        key = f"{_KEY_DOMAIN}\0id\0{source}\0{record_id}"
    else:
        opts = json.dumps(options, sort_keys=True, separators=(",", ":")) if options else ""
        key = (
            f"{_KEY_DOMAIN}\0content\0{source}\0{subject}\0{permission}\0{state}\0"
            f"{moment.isoformat()}\0{version}\0{locale or ''}\0{opts}"
        )
    h = hashlib.sha256(key.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


# -- the canonical form of an imported event, fast -------------------------------------------------

_encode: Any = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.encode_basestring
KINDS = {"granted": "permission_granted", "denied": "permission_denied"}


def iso_z(moment: datetime) -> str:
    """``events._iso`` of a UTC time: microseconds and Z."""
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def iso_of_z(z: str) -> str:
    """``datetime.isoformat()`` of the UTC time whose ``iso_z`` is ``z``."""
    return (z[:19] if z.endswith(".000000Z") else z[:26]) + "+00:00"


class Parts(NamedTuple):
    """The fixed text around an imported event's own values, the same for every event of one
    (permission, state, notice version, locale, source): built once per such combination."""

    kind: str
    source: str  # as the ledger holds it: import:<name>
    hash_a: str  # between the event id and the time
    hash_b: str  # between the options and the previous hash
    hash_c: str  # between the sequence number and the chain reference
    out_a: str  # between the event id and the time (outbox message)
    out_b: str  # between the time and the sequence number
    out_c: str  # between the sequence number and the subject


def parts_of(permission: str, state: str, version: str, locale: str | None, name: str) -> Parts:
    """``Parts`` of an imported event. Ids, references, hashes, kinds, states, sources and
    catalogue ids need no JSON escaping (their alphabets are checked or of our making); the
    notice version and the locale may."""
    kind = KINDS[state]
    source = SOURCE_PREFIX + name
    loc = _encode(locale) if locale is not None else "null"
    version_json = _encode(version)
    return Parts(
        kind,
        source,
        f'","expires_at":null,"kind":"{kind}","locale":{loc},"notice_version":{version_json},'
        f'"occurred_at":"',
        f',"permission_id":"{permission}","prev_hash":"',
        f',"source":"{source}","state":"{state}","subject_ref":"',
        f'","expires_at":null,"kind":"{kind}","notice_version":{version_json},"occurred_at":"',
        f'","permission":"{permission}","seq":',
        f',"source":"{source}","state":"{state}","subject":',
    )


def hash_of(
    p: Parts, event_id: str, occurred_z: str, options_json: str, prev: str, seq: int, ref: str
) -> str:
    """``events.recompute`` of an imported event (no channel, no expiry): the SHA-256 of its
    canonical JSON. ``occurred_z`` is ``iso_z(occurred_at)``; ``options_json`` the stored
    options as canonical JSON ("{}")."""
    text = (
        f'{{"channel":null,"event_id":"{event_id}{p.hash_a}{occurred_z}","options":'
        f'{options_json}{p.hash_b}{prev}","seq":{seq}{p.hash_c}{ref}"}}'
    )
    return sha256(text.encode()).hexdigest()


def payload_of(
    p: Parts, event_id: str, occurred_iso: str, seq: int, subject_json: str, ref: str
) -> str:
    """``messages.encode`` of an imported event's ``PermissionChanged``; ``occurred_iso`` is
    ``occurred_at.isoformat()``, ``subject_json`` the subject id as a JSON string."""
    return (
        f'{{"event_id":"{event_id}{p.out_a}{occurred_iso}{p.out_b}{seq}{p.out_c}{subject_json},'
        f'"subject_ref":"{ref}"}}'
    )


def subject_json(subject: str) -> str:
    return str(_encode(subject))
