"""The subject's rights: erasure (Art. 17), export (Art. 15/20), jurisdiction, objection.

Erasure is crypto-shredding: the subject's key is destroyed and everything keyed by their id is
removed, while the ledger keeps the pseudonymous chain (what was chosen, when) verifiable for the
legal retention period.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.domain.catalogue_vocabulary import LegalBasis
from consentry.domain.decisions import CatalogueIndex
from consentry.domain.errors import InvalidChange, NotToggleable
from consentry.domain.events import EventKind, new_event_id, seal
from consentry.domain.jurisdictions import region_of
from consentry.domain.planning import Change, ChangeOutcome, Context
from consentry.domain.state import ChoiceState
from consentry.domain.views import view_to_json
from consentry.services._ledger_io import opened, retrying, utcnow
from consentry.services.consents import ConsentService
from consentry.services.deliveries import delivery_of
from consentry.services.queries import SubjectQueries
from consentry.storage import deliveries as delivery_rows
from consentry.storage import erasure, pseudonyms
from consentry.storage import preferences as preference_rows
from consentry.storage import repository as repo
from consentry.storage import uses as use_rows
from consentry.storage.database import Database
from consentry.storage.preferences import Preferences

JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
EXPORT_PAGE = 500


@dataclass(frozen=True, slots=True)
class ErasureOutcome:
    subject_ref: str
    event_id: str
    removed: dict[str, int]
    erased_at: datetime | None = None
    seq: int = 0  # events the chain keeps, the erasure's own included


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _json_items(items: Iterator[dict[str, Any]]) -> Iterator[str]:
    """JSON array members, streamed: comma-separated, one per line."""
    first = True
    for item in items:
        yield ("\n" if first else ",\n") + json.dumps(item, ensure_ascii=False)
        first = False


def rules_for(jurisdiction: str | None) -> str:
    """Which consent regime applies, in one phrase (shown on the page and in the API)."""
    region = region_of(jurisdiction)
    if region in {"EEA", "UK"}:
        return "opt-in: nothing that needs consent happens until you agree (GDPR)"
    if region == "US-CA":
        return "opt-out: you can stop the sale and sharing of your data at any time (CCPA/CPRA)"
    return "opt-in by default: nothing that needs consent happens until you agree"


@dataclass(eq=False)
class RightsService:
    db: Database
    index: CatalogueIndex
    consents: ConsentService
    queries: SubjectQueries
    clock: Callable[[], datetime] = utcnow

    # -- jurisdiction ------------------------------------------------------------------------
    def set_jurisdiction(self, subject_id: str, code: str | None) -> str | None:
        normalized = code.strip().upper() if code else None
        if normalized is not None and not JURISDICTION.match(normalized):
            raise InvalidChange(
                f"jurisdiction {code!r} is not an ISO 3166 code such as 'BE' or 'US-CA'"
            )
        with self.db.write() as conn:
            repo.set_jurisdiction(conn, subject_id, normalized, self.clock())
        return normalized

    def jurisdiction(self, subject_id: str) -> str | None:
        return self.queries.state(subject_id).jurisdiction

    # -- objection (Art. 21) -----------------------------------------------------------------
    def object(
        self, subject_id: str, permission_id: str, objected: bool, context: Context
    ) -> ChangeOutcome:
        perm = self.consents.resolve(permission_id)
        if perm.legal_basis is not LegalBasis.LEGITIMATE_INTEREST:
            raise NotToggleable(
                perm.id,
                f"{perm.legal_basis.value} (objection applies to "
                "legitimate interest only; withdraw consent instead)",
            )
        state = ChoiceState.DENIED if objected else ChoiceState.GRANTED
        return self.consents.change(subject_id, [Change(perm.id, state)], context)

    # -- erasure (Art. 17) -------------------------------------------------------------------
    def erase(self, subject_id: str, context: Context) -> ErasureOutcome:
        outcome = retrying(lambda: self._erase_once(subject_id, context))
        self.db.flush_log()  # the erased rows' old pages out of SQLite's write-ahead log
        return outcome

    def _erase_once(self, subject_id: str, context: Context) -> ErasureOutcome:
        now = self.clock()
        with self.db.write() as conn:
            ref = repo.ensure_subject(conn, subject_id, now)
            head = repo.head(conn, subject_id)
            event = seal(
                event_id=new_event_id(),
                subject_ref=ref,
                seq=head.seq + 1,
                kind=EventKind.SUBJECT_ERASED,
                permission_id="",
                state="erased",
                notice_version="",
                source=context.source,
                occurred_at=now,
                prev_hash=head.hash,
            )
            removed = erasure.erase(conn, subject_id, head, event, now)
        return ErasureOutcome(
            event.subject_ref,
            event.event_id,
            {
                "permission_states": removed.permission_states,
                "devices": removed.devices,
                "outbox_redacted": removed.outbox,
                "access_reports": removed.uses,
                "idempotency_keys": removed.idempotency_keys,
                "sessions": removed.sessions,
                "webhook_deliveries": removed.deliveries,
                "preferences": removed.preferences,
            },
            event.occurred_at,
            event.seq,
        )

    # -- export (Art. 15 and 20) -------------------------------------------------------------
    def history_items(self, subject_id: str) -> Iterator[dict[str, Any]]:
        """Every event of the subject, oldest first, readable, with the notice as shown."""
        with self.db.read() as conn:
            ref = pseudonyms.resolve(conn, subject_id)
        if ref is None:
            return
        after = 0
        while True:
            with self.db.read() as conn:
                page = repo.events_after(conn, ref, after, EXPORT_PAGE)
                key = repo.subject_key(conn, ref) if page else None
            for event in page:
                yield self._event_json(opened(event, key))
            if len(page) < EXPORT_PAGE:
                return
            after = page[-1].seq

    def _event_json(self, event: Any) -> dict[str, Any]:
        cat = self.index.catalogue
        perm = self.index.permissions.get(event.permission_id)
        notice: dict[str, Any] | None = None
        if perm is not None:
            locale = event.locale or cat.default_locale
            shown = perm.notice.wording(event.notice_version)
            notice = {
                "version": event.notice_version,
                "locale": locale,
                "title": cat.text(shown.title, locale) if shown else None,
                "text": cat.text(shown.text, locale) if shown else None,
                "current_version": perm.notice.version,
            }
        return {
            "event_id": event.event_id,
            "seq": event.seq,
            "kind": event.kind.value,
            "permission": event.permission_id or None,
            "state": event.state,
            "options": dict(event.options),
            "notice": notice,
            "source": event.source,
            "channel": event.channel,
            "occurred_at": event.occurred_at.isoformat(),
            "expires_at": event.expires_at.isoformat() if event.expires_at else None,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        }

    def export_json(self, subject_id: str) -> Iterator[str]:
        """The whole record as one JSON document, streamed: history is read page by page."""
        opening = json.dumps(self.export_summary(subject_id), ensure_ascii=False, indent=None)
        yield opening[:-1] + ', "history": ['
        yield from _json_items(self.history_items(subject_id))
        yield '\n], "access_reports": ['
        yield from _json_items(self.use_items(subject_id))
        yield "\n]}\n"

    def export_summary(self, subject_id: str) -> dict[str, Any]:
        """The export's opening (everything but the history and the access reports): who we
        are, the permissions as they stand, devices, recipients, opt-outs, page settings."""
        cat = self.index.catalogue
        state = self.queries.state(subject_id)
        views = self.queries.permissions(subject_id)
        shared_with = sorted(
            {r for v in views if v.effective for r in self.index.permissions[v.id].recipients}
        )
        with self.db.read() as conn:
            prefs = preference_rows.get(conn, subject_id) or Preferences()
        return {
            "schema": "https://consentry.example.org/schemas/export/v1",
            "subject": subject_id,
            "exported_at": self.clock().isoformat(),
            "controller": cat.controller.model_dump(),
            "catalogue_version": cat.catalogue_version,
            "jurisdiction": state.jurisdiction,
            "rules": rules_for(state.jurisdiction),
            "permissions": [
                {
                    **view_to_json(v),
                    "title": cat.text(
                        self.index.permissions[v.id].notice.title, cat.default_locale
                    ),
                    "legal_basis": self.index.permissions[v.id].legal_basis.value,
                }
                for v in views
            ],
            "devices": [
                {
                    "device_id": d.device_id,
                    "platform": d.platform,
                    "app_version": d.app_version,
                    "os_permissions": dict(d.os_permissions),
                    "updated_at": d.updated_at.isoformat(),
                }
                for d in state.devices.values()
            ],
            "recipients_receiving_data": [
                {
                    "id": r,
                    "name": cat.recipients[r].name,
                    "country": cat.recipients[r].country,
                    "outside_eea": cat.recipients[r].outside_eea,
                }
                for r in shared_with
            ],
            "opt_out_deliveries": self._deliveries(subject_id),
            "preferences": {"locale": prefs.locale, "time_zone": prefs.time_zone},
        }

    def _deliveries(self, subject_id: str) -> list[dict[str, Any]]:
        """Opt-outs owed to recipients' webhooks for this subject, newest first."""
        with self.db.read() as conn:
            found = delivery_rows.for_subject(conn, subject_id, limit=10_000)
        cat = self.index.catalogue
        out = []
        for row in found:
            body = delivery_of(row).body
            recipient = cat.recipients.get(row.recipient)
            out.append(
                {
                    "recipient": row.recipient,
                    "recipient_name": recipient.name if recipient else row.recipient,
                    "type": body.get("type"),
                    "permission": body.get("permission"),
                    "event_id": row.event_id,
                    "status": row.status,
                    "attempts": row.attempts,
                    "created_at": row.created_at.isoformat(),
                    "sent_at": _iso(row.sent_at),
                    "acknowledged_at": _iso(row.acknowledged_at),
                }
            )
        return out

    def use_items(self, subject_id: str) -> Iterator[dict[str, Any]]:
        """Every access report kept for the subject, in the order recorded, page by page."""
        after = 0
        while True:
            with self.db.read() as conn:
                page = use_rows.page_for_subject(conn, subject_id, after, EXPORT_PAGE)
            for _, use in page:
                yield {
                    "used_at": use.used_at.isoformat(),
                    "service": use.service,
                    "purpose": use.purpose,
                    "categories": list(use.categories),
                    "recipient": use.recipient,
                    "permission": use.permission_id,
                    "allowed_then": use.allowed,
                    "reason": use.reason,
                    "outcome": use.outcome,
                }
            if len(page) < EXPORT_PAGE:
                return
            after = page[-1][0]

    def export_csv(self, subject_id: str) -> Iterator[str]:
        """The history as CSV, one row per event (current state is the newest row per id)."""
        columns = [
            "occurred_at",
            "event_id",
            "seq",
            "kind",
            "permission",
            "state",
            "notice_version",
            "locale",
            "source",
            "channel",
            "options",
            "expires_at",
            "hash",
        ]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for item in self.history_items(subject_id):
            notice = item["notice"] or {}
            writer.writerow(
                [
                    item["occurred_at"],
                    item["event_id"],
                    item["seq"],
                    item["kind"],
                    item["permission"] or "",
                    item["state"],
                    notice.get("version", ""),
                    notice.get("locale", ""),
                    item["source"],
                    item["channel"] or "",
                    json.dumps(item["options"], ensure_ascii=False) if item["options"] else "",
                    item["expires_at"] or "",
                    item["hash"],
                ]
            )
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()
