"""Consent receipts: one per ledger event, in the ISO/IEC TS 27560 record structure, signed.

A receipt is the record of one event (a grant, a withdrawal or refusal, an objection) with what
the subject was told: the notice, the purposes, the data, the controller and recipients, how the
choice was collected and how to withdraw it. It is signed as a compact JWS (Ed25519) so the
subject can prove it later without consentry's database: ``consentry receipt verify FILE``.

Field names follow ISO/IEC TS 27560:2023 in snake case, as the W3C DPV guide "consent-27560"
lays them out (record metadata, processing, parties, events); the processing fields beyond the
core ones are built in ``receipt_fields``.

The notice shown is quoted from the catalogue: the current version's text, or an earlier
version's from ``notice.history``, with ``text_sha256``. When the catalogue no longer holds the
shown version's wording the receipt carries no text, only the version, a note and a hash of the
current text, rather than words the subject never saw.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_vocabulary import LegalBasis, RecipientKind
from consentry.domain.events import Event, EventKind
from consentry.domain.imports import SOURCE_PREFIX as IMPORTED
from consentry.services import checkpoints, receipt_fields
from consentry.services._ledger_io import utcnow
from consentry.services.queries import SubjectQueries
from consentry.services.receipt_signing import (
    ReceiptKeys,
    canonical_json,
    load_receipt_keys,
    receipt_file,
)

if TYPE_CHECKING:
    from consentry.config import Settings

SCHEMA_VERSION = "consentry-receipt/1"
CONFORMS_TO = "ISO/IEC TS 27560:2023"

_GDPR_ARTICLE = {
    LegalBasis.CONSENT: "GDPR Art. 6(1)(a)",
    LegalBasis.CONTRACT: "GDPR Art. 6(1)(b)",
    LegalBasis.LEGAL_OBLIGATION: "GDPR Art. 6(1)(c)",
    LegalBasis.LEGITIMATE_INTEREST: "GDPR Art. 6(1)(f)",
}
_COLLECTION = {
    "web": "on the Permissions page of the website",
    "app": "in the mobile app",
    "api": "by the platform, relaying the customer's choice through the consentry API",
    "gpc": (
        "a Global Privacy Control signal from the customer's browser (Sec-GPC: 1), honoured "
        "as an opt-out of sale and sharing (California Code of Regulations, title 11, § 7025)"
    ),
    "system": "by consentry itself",
    "banner": (
        "in the first-visit choice on the shop (consentry.js); the channel names the banner shown"
    ),
    "device_merge": (
        "carried over at sign-in from the choices made on this browser before signing in "
        "(the more protective choice wins unless the account's own choice is later)"
    ),
}


def _collected(source: str) -> str:
    if source.startswith(IMPORTED):
        return (
            f"recorded by another consent platform ({source[len(IMPORTED) :]}) before consentry "
            "and imported with its original time, notice version and language"
        )
    return _COLLECTION.get(source, source)


class ReceiptsUnavailable(RuntimeError):
    """No signing key is configured (outside --demo): receipts cannot be issued."""


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _event_meaning(
    event: Event, basis: LegalBasis | None, previous: Event | None
) -> tuple[str, str]:
    """(event_type, event_state) in the consent lifecycle terms of ISO 27560 / DPV."""
    if event.kind is EventKind.SUBJECT_ERASED:
        return "erasure", "erased"
    granted = event.state == "granted"
    if basis is LegalBasis.LEGITIMATE_INTEREST:
        return ("objection_withdrawn", "not_objected") if granted else ("objection", "objected")
    if granted:
        return "consent_given", "given"
    if previous is not None and previous.state == "granted":
        return "consent_withdrawn", "withdrawn"
    return "consent_refused", "refused"


def build_receipt(
    catalogue: Catalogue,
    event: Event,
    subject_id: str,
    *,
    previous: Event | None,
    issued_at: datetime,
    receipt_id: str,
) -> dict[str, Any]:
    """The ISO/IEC TS 27560 record of one event. ``previous`` is the subject's preceding event
    on the same permission (it tells a withdrawal from a refusal). Pure."""
    perm = catalogue.permission(event.permission_id)
    locale = event.locale if event.locale in catalogue.locales else catalogue.default_locale
    controller = catalogue.controller
    notice: dict[str, Any] = {"notice_id": event.permission_id, "version": event.notice_version}
    processing: dict[str, Any] = {}
    if perm is None:
        notice["note"] = "this permission is no longer in the catalogue"
    else:
        shown = perm.notice.wording(event.notice_version)
        notice.update(current_version=perm.notice.version)
        if shown is not None:
            text = catalogue.text(shown.text, locale)
            notice.update(
                title=catalogue.text(shown.title, locale),
                text=text,
                text_sha256=_sha256(text),
            )
        else:
            current_text = catalogue.text(perm.notice.text, locale)
            notice.update(
                title=None,
                text=None,
                current_text_sha256=_sha256(current_text),
                note=(
                    f"The catalogue no longer holds the text of version {event.notice_version}; "
                    f"current_text_sha256 is the hash of version {perm.notice.version}, not of "
                    "the text shown then."
                ),
            )
        recipients = [catalogue.recipients[r] for r in perm.recipients]
        processing = {
            "purposes": receipt_fields.purposes(catalogue, perm, locale),
            "lawful_basis": perm.legal_basis.value,
            "lawful_basis_reference": _GDPR_ARTICLE[perm.legal_basis],
            "pii_information": receipt_fields.pii_information(catalogue, perm, locale),
            "processing_locations": receipt_fields.processing_locations(catalogue, perm),
            "recipient_third_parties": [
                {
                    "party_id": rid,
                    "party_name": r.name,
                    "party_country": r.country,
                    "party_type": r.kind.value,
                    "outside_eea": r.outside_eea,
                }
                for rid, r in zip(perm.recipients, recipients, strict=True)
                if r.kind is not RecipientKind.CONTROLLER
            ],
            "withdrawal_method": _withdrawal(perm.legal_basis, controller.contact),
            **receipt_fields.processing_extras(catalogue, perm),
        }
    event_type, event_state = _event_meaning(event, perm.legal_basis if perm else None, previous)
    return {
        "schema_version": SCHEMA_VERSION,
        "conforms_to": CONFORMS_TO,
        "record_id": event.event_id,
        "receipt_id": receipt_id,
        "issued_at": _iso(issued_at),
        "pii_principal_id": subject_id,
        "language": locale,
        "privacy_notice": notice,
        **processing,
        "pii_controllers": [
            {
                "party_name": controller.name,
                "party_contact": controller.contact,
                "party_country": controller.country,
                "party_role": "controller",
            }
        ],
        "collection_method": {
            "source": event.source,
            "channel": event.channel,
            "description": _collected(event.source),
        },
        "events": [
            {
                "event_time": _iso(event.occurred_at),
                "event_type": event_type,
                "event_state": event_state,
                "entity_id": controller.name if event.source == "system" else subject_id,
                "validity_duration": {"until": _iso(event.expires_at)},
                "options": dict(event.options),
            }
        ],
        "ledger": {
            "subject_ref": event.subject_ref,
            "seq": event.seq,
            "kind": event.kind.value,
            "permission_id": event.permission_id,
            "state": event.state,
            "hash": event.hash,
            "prev_hash": event.prev_hash,
            "hash_algorithm": "SHA-256 over the event's canonical JSON (consentry ledger)",
        },
        "catalogue_version": catalogue.catalogue_version,
    }


def _withdrawal(basis: LegalBasis, contact: str) -> str:
    if basis is LegalBasis.CONSENT:
        return (
            "Switch it off on your Permissions page (/permissions) or in the app, at any time, "
            f"or write to {contact}; withdrawing is as easy as giving (GDPR Art. 7(3))."
        )
    if basis is LegalBasis.LEGITIMATE_INTEREST:
        return (
            f"Object on your Permissions page (/permissions) or write to {contact} (GDPR Art. 21)."
        )
    return (
        f"Not based on consent ({basis.value}): it cannot be withdrawn while it is needed; "
        f"questions to {contact}."
    )


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    receipt: dict[str, Any]
    jws: str

    def file_bytes(self) -> bytes:
        """What to offer for download (and what GET /v1/subjects/{sid}/receipts/{id} returns):
        ``consentry receipt verify`` checks exactly these bytes."""
        return receipt_file(self.receipt, self.jws)

    @property
    def filename(self) -> str:
        return f"consent-receipt-{self.receipt['record_id']}.json"


@dataclass(eq=False, repr=False)
class ReceiptService:
    catalogue: Catalogue
    queries: SubjectQueries
    keys: ReceiptKeys
    clock: Callable[[], datetime] = utcnow

    @property
    def available(self) -> bool:
        return self.keys.signer is not None

    def issue(self, subject_id: str, event_id: str) -> SignedReceipt | None:
        """The signed receipt of one of the subject's events; None when the subject has no
        such event (another subject's event is "no such event" too)."""
        if not self.available:
            raise ReceiptsUnavailable(
                "receipt signing is not configured: set CONSENTRY_RECEIPT_SIGNING_KEY"
            )
        located = self.queries.event(subject_id, event_id)
        if located is None:
            return None
        event, previous = located
        record = build_receipt(
            self.catalogue,
            event,
            subject_id,
            previous=previous,
            issued_at=self.clock(),
            receipt_id=str(uuid.uuid4()),
        )
        covered = checkpoints.covering(self.queries.db, event.subject_ref, event.seq)
        if covered is not None:  # the published checkpoint this event is in
            record["ledger"]["checkpoint"] = {
                "number": covered["number"],
                "root": covered["root"],
                "tree_size": covered["tree_size"],
                "created_at": covered["created_at"],
                "published_at": "/.well-known/consentry-checkpoints.json",
                "inclusion_proof": f"/v1/subjects/{subject_id}/receipts/{event.event_id}/inclusion",
            }
        payload = canonical_json(record)
        # The readable copy is the payload read back, so it has the payload's key order.
        return SignedReceipt(json.loads(payload), self.keys.sign(payload))


def receipt_service(
    catalogue: Catalogue, queries: SubjectQueries, settings: Settings
) -> ReceiptService:
    """The receipt service with the keys the settings name (cheap to build). Raises
    ``receipt_signing.ReceiptKeyError`` when a configured key cannot be used."""
    return ReceiptService(catalogue, queries, load_receipt_keys(settings))
