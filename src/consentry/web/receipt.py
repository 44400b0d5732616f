"""A consent receipt for one ledger event, as the subject downloads it from the History tab. Pure.

It carries the event as recorded (with its hash and the previous event's hash, so it can be
checked against the ledger), who the controller is, and the notice the subject was shown. The
catalogue keeps only the current text of each notice: for an event on an older version the text
is left out and the receipt says so, rather than showing words the subject never saw.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from consentry.domain.catalogue import Catalogue
from consentry.domain.events import Event

RECEIPT_FORMAT = "consentry.receipt/1"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_receipt(
    catalogue: Catalogue, subject_id: str, event: Event, issued_at: datetime
) -> dict[str, Any]:
    perm = catalogue.permission(event.permission_id)
    locale = event.locale if event.locale in catalogue.locales else catalogue.default_locale
    notice: dict[str, Any] = {
        "permission": event.permission_id,
        "version": event.notice_version,
        "locale": locale,
        "title": None,
        "text": None,
    }
    if perm is None:
        notice["note"] = "this permission is no longer in the catalogue"
    else:
        notice["purpose"] = perm.purpose
        notice["legal_basis"] = perm.legal_basis.value
        notice["recipients"] = [
            {
                "name": catalogue.recipients[r].name,
                "country": catalogue.recipients[r].country,
                "outside_eea": catalogue.recipients[r].outside_eea,
            }
            for r in perm.recipients
        ]
        if perm.notice.version == event.notice_version:
            notice["title"] = catalogue.text(perm.notice.title, locale)
            notice["text"] = catalogue.text(perm.notice.text, locale)
        else:
            notice["note"] = (
                f"the text of notice version {event.notice_version} is no longer in the "
                f"catalogue (current version: {perm.notice.version})"
            )
    return {
        "format": RECEIPT_FORMAT,
        "issued_at": _iso(issued_at),
        "controller": catalogue.controller.model_dump(),
        "catalogue_version": catalogue.catalogue_version,
        "subject": subject_id,
        # How the ledger names this subject (a pseudonym): what the hash covers.
        "subject_ref": event.subject_ref,
        "event": {
            "event_id": event.event_id,
            "seq": event.seq,
            "kind": event.kind.value,
            "permission": event.permission_id,
            "state": event.state,
            "options": dict(event.options),
            "notice_version": event.notice_version,
            "source": event.source,
            "locale": event.locale,
            "channel": event.channel,
            "occurred_at": _iso(event.occurred_at),
            "expires_at": _iso(event.expires_at),
        },
        "hash": event.hash,
        "prev_hash": event.prev_hash,
        "hash_algorithm": "sha256 over the event's canonical JSON (consentry.domain.events)",
        "notice": notice,
        # Filled once signed receipts exist (standards); until then the hash chain is the proof.
        "signature": None,
    }
