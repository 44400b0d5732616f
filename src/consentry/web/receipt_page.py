"""A consent receipt a person can read: one choice, as an HTML page (printable) in the page's
language, with the signed JWS (``receipt.json``) to download beside it. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from consentry.domain.catalogue import Catalogue
from consentry.domain.events import Event
from consentry.web.i18n import Translator
from consentry.web.labels import action_text, source_text


@dataclass(frozen=True, slots=True)
class ReceiptView:
    event_id: str
    title: str
    notice_text: str | None
    notice_version: str
    action: str
    when: str
    when_iso: str
    source: str
    channel: str | None
    device: str | None  # the device the choice was made on, when the client named it
    language: str | None
    controller: str
    hash: str


def _named_device(value: object) -> str | None:
    return value[:200] if isinstance(value, str) and value.strip() else None


def receipt_view(catalogue: Catalogue, event: Event, tr: Translator) -> ReceiptView:
    """What was shown (the notice text of that version, in the language it was shown if the
    ledger says so), what was chosen, when (in the customer's time zone) and from where (the
    channel: website, app, our services; and the device, when the client named it)."""
    perm = catalogue.permission(event.permission_id)
    shown_in = event.locale if event.locale in catalogue.locales else tr.locale
    wording = perm.notice.wording(event.notice_version) if perm is not None else None
    title = catalogue.text(wording.title, tr.locale) if wording else event.permission_id
    return ReceiptView(
        event_id=event.event_id,
        title=title,
        notice_text=catalogue.text(wording.text, shown_in) if wording else None,
        notice_version=event.notice_version,
        action=action_text(perm, event.state, tr, event.options.get("reason")),
        when=tr.datetime(event.occurred_at),
        when_iso=event.occurred_at.isoformat(),
        source=source_text(event.source, tr),
        channel=event.channel,
        device=_named_device(event.options.get("device")),
        language=tr.language_name(shown_in) if event.locale else None,
        controller=catalogue.controller.name,
        hash=event.hash,
    )
