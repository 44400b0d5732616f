"""Where the subject stands, in the page's language: which rules apply to them, whether their
browser's Global Privacy Control was honoured, which changed notices to ask about again, and
whether each third party confirmed their opt-out. Pure.

The API says which rules apply in English (``services.rights.rules_for``); the page says it
here, translated, from the same regions (``domain.jurisdictions.region_of``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from consentry.domain.catalogue import Catalogue
from consentry.domain.jurisdictions import region_of
from consentry.domain.views import PermissionView
from consentry.services.deliveries import RecipientDeliveries
from consentry.web.i18n import Translator

GPC_SOURCE = "gpc"
NOTICE_CHANGED = "notice_changed"
ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True, slots=True)
class ReconsentItem:
    """One permission the subject had allowed, whose notice changed materially since."""

    id: str
    title: str
    change: str
    notice_version: str


# Countries whose English names take with "the" ("You are in the Netherlands").
_ENGLISH_THE = frozenset({"NL", "GB", "US", "CZ", "AE", "PH"})


def _place(jurisdiction: str, region: str, tr: Translator) -> str:
    code = jurisdiction.upper()
    if code == "US-CA":
        return tr.gettext("California")
    if code in {"EU", "EEA"}:
        return tr.gettext("the European Economic Area")
    country = "GB" if region == "UK" else code.split("-", 1)[0]
    name = tr.country(country)
    return f"the {name}" if tr.locale == "en" and country in _ENGLISH_THE else name


def rules_text(jurisdiction: str | None, tr: Translator) -> str:
    """Which consent rules apply, in one or two sentences (the page's version of rules_for)."""
    if not jurisdiction:
        return tr.gettext(
            "We do not know where you live, so the strictest rules apply: nothing is used for "
            "purposes that need your consent until you allow it."
        )
    region = region_of(jurisdiction)
    place = _place(jurisdiction, region, tr)
    if region in {"EEA", "UK"}:
        return tr.gettext(
            "You are in %(place)s: nothing is used for purposes that need your consent until "
            "you allow it.",
            place=place,
        )
    if region == "US-CA":
        return tr.gettext(
            "You are in %(place)s: the sale and sharing of your data may be on until you say "
            "no, and you can stop it here at any time. Other uses that need your consent stay "
            "off until you allow them.",
            place=place,
        )
    return tr.gettext(
        "You are in %(place)s, where our default rules apply: nothing is used for purposes that "
        "need your consent until you allow it.",
        place=place,
    )


def gpc_honoured(catalogue: Catalogue, views: Sequence[PermissionView]) -> bool:
    """True while the subject's state shows a GPC opt-out in force: some sale or sharing
    permission was switched off by the signal, and none of them is on now."""
    sale_or_sharing = {p.id for p in catalogue.permissions if p.sale_or_sharing and p.toggleable}
    concerned = [v for v in views if v.id in sale_or_sharing]
    by_gpc = any(v.state == "denied" and v.source == GPC_SOURCE for v in concerned)
    return by_gpc and not any(v.effective for v in concerned)


def reconsent_items(
    catalogue: Catalogue, views: Sequence[PermissionView], tr: Translator
) -> tuple[ReconsentItem, ...]:
    """Grants that stopped counting because their notice changed materially: asked once, at
    the top of the page, until the subject answers (an answer is a new choice, so the reason
    is no longer ``notice_changed``)."""
    items = []
    for view in views:
        perm = catalogue.permission(view.id)
        if perm is None or view.reason != NOTICE_CHANGED:
            continue
        summary = perm.notice.change_summary
        change = (
            catalogue.text(summary, tr.locale)
            if summary
            else tr.gettext("We changed what this covers since you allowed it.")
        )
        items.append(
            ReconsentItem(
                id=perm.id,
                title=catalogue.text(perm.notice.title, tr.locale),
                change=change,
                notice_version=perm.notice.version,
            )
        )
    return tuple(items)


def delivery_text(group: RecipientDeliveries, tr: Translator) -> str:
    """Whether the latest opt-out reached this recipient and whether it confirmed it."""
    row = group.latest.row
    if row.status == ACKNOWLEDGED and row.sent_at and row.acknowledged_at:
        return tr.gettext(
            "Opt-out sent on %(sent)s, acknowledged on %(acknowledged)s.",
            sent=tr.datetime(row.sent_at),
            acknowledged=tr.datetime(row.acknowledged_at),
        )
    if row.sent_at:
        return tr.gettext(
            "Opt-out sent on %(sent)s; acknowledgement pending.", sent=tr.datetime(row.sent_at)
        )
    return tr.gettext("Opt-out pending: not delivered yet.")


def delivery_texts(
    catalogue: Catalogue, deliveries: Sequence[RecipientDeliveries], tr: Translator
) -> Mapping[str, str]:
    """Recipient id -> its delivery line, for recipients that have a webhook."""
    return {
        group.recipient: delivery_text(group, tr)
        for group in deliveries
        if group.deliveries
        and (recipient := catalogue.recipients.get(group.recipient)) is not None
        and recipient.webhook is not None
    }
