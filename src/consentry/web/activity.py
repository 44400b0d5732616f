"""The History and "Who used my data" tabs: ledger events, reported uses and the uses refused
because the customer said no, as rows. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time

from consentry.domain.catalogue import Catalogue
from consentry.domain.events import Event, EventKind
from consentry.domain.views import PermissionView
from consentry.http.session import Session
from consentry.services.uses import RefusedCount, UseGroup
from consentry.web.i18n import Translator
from consentry.web.labels import action_text, source_text

CHOICE_EVENTS = frozenset({EventKind.PERMISSION_GRANTED, EventKind.PERMISSION_DENIED})


@dataclass(frozen=True, slots=True)
class AccessRow:
    # The switch's own title when the use falls under a permission (else the purpose's label).
    purpose: str
    recipient: str
    outside_eea: bool
    count_text: str
    first_used: str
    last_used: str
    last_used_iso: str
    violation_text: str | None
    first_used_iso: str = ""
    data: tuple[str, ...] = ()
    recipient_country: str = ""
    # The switch that stops this use, when the customer can switch it off.
    switch_id: str | None = None


@dataclass(frozen=True, slots=True)
class RefusedRow:
    # "We did not use your data for “Personalised ads” 3 times this week, because it is off."
    text: str
    # The switch that refused it, when the customer can change it.
    switch_id: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    event_id: str
    when: str
    when_iso: str
    permission_id: str
    title: str
    action: str
    source: str
    notice_version: str


def history_rows(catalogue: Catalogue, events: Sequence[Event], tr: Translator) -> list[HistoryRow]:
    rows = []
    for event in events:
        if event.kind not in CHOICE_EVENTS:
            continue  # e.g. an erasure marker: not a choice, and it carries no permission
        perm = catalogue.permission(event.permission_id)
        title = catalogue.text(perm.notice.title, tr.locale) if perm else event.permission_id
        rows.append(
            HistoryRow(
                event_id=event.event_id,
                when=tr.datetime(event.occurred_at),
                when_iso=event.occurred_at.isoformat(),
                permission_id=event.permission_id,
                title=title,
                action=action_text(perm, event.state, tr, event.options.get("reason")),
                source=source_text(event.source, tr),
                notice_version=event.notice_version,
            )
        )
    return rows


def access_rows(
    catalogue: Catalogue, groups: Sequence[UseGroup], tr: Translator
) -> list[AccessRow]:
    """What services reported using, by purpose and recipient (the "Who used my data" tab)."""
    rows = []
    for group in groups:
        purpose = catalogue.purposes.get(group.purpose)
        perm = catalogue.permission(group.permission_id or "")
        if perm is not None:
            title = catalogue.text(perm.notice.title, tr.locale)
        else:
            title = catalogue.text(purpose.label, tr.locale) if purpose else group.purpose
        recipient = catalogue.recipients.get(group.recipient or "")
        name = recipient.name if recipient else group.recipient or catalogue.controller.name
        country = recipient.country if recipient else catalogue.controller.country
        violation = None
        if group.violations:
            violation = tr.ngettext(
                "%(num)d of these uses did not respect your choices at the time; it is flagged "
                "for our privacy team.",
                "%(num)d of these uses did not respect your choices at the time; they are "
                "flagged for our privacy team.",
                group.violations,
            )
        rows.append(
            AccessRow(
                purpose=title,
                recipient=name,
                outside_eea=bool(recipient and recipient.outside_eea),
                count_text=tr.ngettext("Used %(num)d time", "Used %(num)d times", group.count),
                first_used=tr.datetime(group.first_used),
                last_used=tr.datetime(group.last_used),
                last_used_iso=group.last_used.isoformat(),
                first_used_iso=group.first_used.isoformat(),
                violation_text=violation,
                data=tuple(
                    catalogue.text(catalogue.categories[c].label, tr.locale)
                    if c in catalogue.categories
                    else c
                    for c in group.categories
                ),
                recipient_country=tr.country(country),
                switch_id=perm.id if perm is not None and perm.toggleable else None,
            )
        )
    return rows


def refused_rows(
    catalogue: Catalogue,
    counts: Sequence[RefusedCount],
    views: Sequence[PermissionView],
    tr: Translator,
) -> list[RefusedRow]:
    """The uses services refrained from this week because the customer said no, one line per
    permission, named by the switch's own title; "it is off" while it still is, else "it was
    off" (switched back on since)."""
    on_now = {v.id for v in views if v.effective}
    rows = []
    for count in counts:
        perm = catalogue.permission(count.permission_id or "")
        if perm is not None:
            title = catalogue.text(perm.notice.title, tr.locale)
        else:
            purpose = catalogue.purposes.get(count.purpose)
            title = catalogue.text(purpose.label, tr.locale) if purpose else count.purpose
        if perm is not None and perm.id in on_now:
            text = tr.ngettext(
                "We did not use your data for “%(title)s” %(num)d time this week, because it "
                "was off then.",
                "We did not use your data for “%(title)s” %(num)d times this week, because it "
                "was off then.",
                count.count,
                title=title,
            )
        else:
            text = tr.ngettext(
                "We did not use your data for “%(title)s” %(num)d time this week, because it "
                "is off.",
                "We did not use your data for “%(title)s” %(num)d times this week, because it "
                "is off.",
                count.count,
                title=title,
            )
        rows.append(
            RefusedRow(
                text=text,
                switch_id=perm.id if perm is not None and perm.toggleable else None,
            )
        )
    return rows


def erased_notice(tr: Translator, session: Session) -> str | None:
    """The day, in the page's language, the platform said this account's earlier data was
    erased (its sign-in token's ``erased_on``), for the History tab's notice; None if not."""
    if session.erased_on is None:
        return None
    return tr.date(datetime.combine(session.erased_on, time(), UTC))
