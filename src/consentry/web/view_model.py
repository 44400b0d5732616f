"""What the Permissions page's first tab shows, built from the catalogue and a subject's state.

Pure. Everything the template prints is decided here (texts already in the page's language), so
the wording rules can be tested without a browser: the three groups, which
recipients receive data now, and why a permission that cannot be switched off is needed. The
summary sentence is worded in ``summary``; where the subject stands (rules, GPC, re-consent,
opt-out deliveries) in ``standing``; the History and "Who used my data" tabs in ``activity``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission, Recipient
from consentry.domain.catalogue_vocabulary import LegalBasis, PermissionGroup, RecipientKind
from consentry.domain.state import DeviceReport
from consentry.domain.views import PermissionView
from consentry.services.deliveries import RecipientDeliveries
from consentry.web.i18n import Translator
from consentry.web.labels import basis_text, device_value_text, kind_role, platform_text
from consentry.web.sections import Section, build_sections
from consentry.web.standing import (
    ReconsentItem,
    delivery_texts,
    gpc_honoured,
    reconsent_items,
    rules_text,
)
from consentry.web.summary import (
    THIRD_PARTIES,
    device_allows,
    is_sale,
    summary,
    summary_phrases,
)

# Where the app can take the customer to change an OS permission; a browser has no such link.
SETTINGS_LINKS = {
    "ios": "app-settings:",
    "android": "intent:#Intent;action=android.settings.APPLICATION_DETAILS_SETTINGS;end",
}


@dataclass(frozen=True, slots=True)
class RecipientItem:
    id: str
    name: str
    country: str
    country_code: str
    outside_eea: bool
    kind: str
    role: str
    description: str | None
    third_party: bool
    buys_data: bool
    receives_now: bool
    via: tuple[str, ...]
    # For a recipient with a webhook: whether the subject's latest opt-out reached it.
    delivery: str | None = None


@dataclass(frozen=True, slots=True)
class PermissionCard:
    id: str
    title: str
    text: str
    purpose: str
    data: tuple[str, ...]
    recipients: tuple[RecipientItem, ...]
    basis: str
    basis_text: str
    toggleable: bool
    checked: bool
    next_state: str
    state_text: str
    notice_version: str
    sold: bool
    shared: bool
    outside_eea: bool
    note: str | None
    why: str | None
    # Why it is off when that is not a plain refusal: expired | auto_reset | notice_changed.
    status: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: str
    title: str
    value: str
    value_text: str
    text: str
    used_for: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeviceCard:
    device_id: str
    platform: str
    platform_text: str
    app_version: str
    reported_at: str
    reported_iso: str
    rows: tuple[DeviceRow, ...]
    settings_url: str | None


@dataclass(frozen=True, slots=True)
class PageModel:
    locale: str
    summary: str
    consent_total: int
    consent_on: int
    devices: tuple[DeviceCard, ...]
    usage: tuple[PermissionCard, ...]
    needed: tuple[PermissionCard, ...]
    sharing: tuple[PermissionCard, ...]
    recipients: tuple[RecipientItem, ...]
    rules: str = ""
    gpc: bool = False
    reconsent: tuple[ReconsentItem, ...] = ()
    # The summary as sentences of (clause, link to the switch it is about).
    phrases: tuple[tuple[tuple[str, str], ...], ...] = ()
    # The collapsible sections of the uses outside sale and sharing.
    sections: tuple[Section, ...] = ()

    def cards_of(self, section: Section) -> tuple[PermissionCard, ...]:
        by_id = {c.id: c for c in self.usage}
        return tuple(by_id[pid] for pid in section.permission_ids if pid in by_id)

    @property
    def toggleable(self) -> tuple[PermissionCard, ...]:
        return self.usage + self.sharing


# -- building blocks -------------------------------------------------------------------------------
def _blocked_device_titles(
    catalogue: Catalogue, perm: Permission, devices: Sequence[DeviceReport], locale: str
) -> list[str]:
    titles = {d.id: catalogue.text(d.title, locale) for d in catalogue.device_permissions}
    blocked: list[str] = []
    for category in perm.categories:
        need = catalogue.categories[category].device
        if need is not None and not device_allows(catalogue, category, devices):
            title = titles.get(need.permission, need.permission)
            if title not in blocked:
                blocked.append(title)
    return blocked


def _recipient(
    catalogue: Catalogue,
    rid: str,
    recipient: Recipient,
    via: Sequence[str],
    tr: Translator,
    delivery: str | None,
) -> RecipientItem:
    return RecipientItem(
        id=rid,
        name=recipient.name,
        country=tr.country(recipient.country),
        country_code=recipient.country,
        outside_eea=recipient.outside_eea,
        kind=recipient.kind.value,
        role=kind_role(recipient.kind, tr),
        description=catalogue.text(recipient.description, tr.locale)
        if recipient.description
        else None,
        third_party=recipient.kind in THIRD_PARTIES,
        buys_data=recipient.kind is RecipientKind.DATA_BUYER,
        receives_now=bool(via),
        via=tuple(via),
        delivery=delivery,
    )


def status_of(view: PermissionView) -> str | None:
    """Why a permission is off when the subject did not simply refuse it."""
    if view.reason in ("notice_changed", "expired"):
        return view.reason
    if view.state == "denied" and view.options.get("reason") == "auto_reset":
        return "auto_reset"
    return None


def _note(
    catalogue: Catalogue,
    perm: Permission,
    view: PermissionView,
    devices: Sequence[DeviceReport],
    tr: Translator,
    unused_since: datetime | None,
) -> str | None:
    status = status_of(view)
    if status == "notice_changed":
        # The badge says it changed; what changed is asked once at the top of the page
        # (standing.reconsent_items), so the card does not repeat it.
        return None
    if status == "expired":
        if view.expires_at is None:
            return tr.gettext("Your time-limited permission has ended.")
        return tr.gettext(
            "Expired on %(date)s: your time-limited permission has ended.",
            date=tr.datetime(view.expires_at),
        )
    if status == "auto_reset":
        if unused_since is None:
            return tr.gettext("Switched off automatically: it was not used for a long time.")
        return tr.gettext(
            "Switched off automatically because it was not used since %(date)s.",
            date=tr.date(unused_since),
        )
    if view.effective and perm.legal_basis is LegalBasis.CONSENT:
        blocked = _blocked_device_titles(catalogue, perm, devices, tr.locale)
        if blocked:
            return tr.gettext(
                "It also needs “%(setting)s” on your device, which is not allowed there now.",
                setting=", ".join(blocked),
            )
    return None


def _card(
    catalogue: Catalogue,
    perm: Permission,
    view: PermissionView,
    devices: Sequence[DeviceReport],
    recipients: dict[str, RecipientItem],
    tr: Translator,
    unused_since: datetime | None = None,
) -> PermissionCard:
    loc = tr.locale
    items = tuple(recipients[r] for r in perm.recipients)
    state_text = tr.gettext("On") if view.effective else tr.gettext("Off")
    why = None if perm.toggleable else basis_text(perm, tr)
    return PermissionCard(
        id=perm.id,
        title=catalogue.text(perm.notice.title, loc),
        text=catalogue.text(perm.notice.text, loc),
        purpose=catalogue.text(catalogue.purposes[perm.purpose].label, loc),
        data=tuple(catalogue.text(catalogue.categories[c].label, loc) for c in perm.categories),
        recipients=items,
        basis=perm.legal_basis.value,
        basis_text=basis_text(perm, tr),
        toggleable=perm.toggleable,
        checked=view.effective,
        next_state="denied" if view.effective else "granted",
        state_text=state_text,
        notice_version=perm.notice.version,
        sold=is_sale(catalogue, perm),
        shared=any(r.third_party for r in items),
        outside_eea=any(r.outside_eea for r in items),
        note=_note(catalogue, perm, view, devices, tr, unused_since),
        why=why,
        status=status_of(view),
    )


def _device_cards(
    catalogue: Catalogue, devices: Sequence[DeviceReport], tr: Translator
) -> tuple[DeviceCard, ...]:
    loc = tr.locale
    cards = []
    for report in devices:
        rows = []
        for spec in catalogue.device_permissions:
            value = report.os_permissions.get(spec.id)
            if value is None:
                continue
            categories = set(spec.categories) | {
                name
                for name, cat in catalogue.categories.items()
                if cat.device is not None and cat.device.permission == spec.id
            }
            used_for = tuple(
                catalogue.text(p.notice.title, loc)
                for p in catalogue.permissions
                if categories.intersection(p.categories)
            )
            rows.append(
                DeviceRow(
                    id=spec.id,
                    title=catalogue.text(spec.title, loc),
                    value=value,
                    value_text=device_value_text(value, tr),
                    text=catalogue.text(spec.text, loc),
                    used_for=used_for,
                )
            )
        cards.append(
            DeviceCard(
                device_id=report.device_id,
                platform=report.platform,
                platform_text=platform_text(report.platform, tr),
                app_version=report.app_version,
                reported_at=tr.datetime(report.updated_at),
                reported_iso=report.updated_at.isoformat(),
                rows=tuple(rows),
                settings_url=SETTINGS_LINKS.get(report.platform),
            )
        )
    return tuple(cards)


def _receiving(
    catalogue: Catalogue, by_id: Mapping[str, PermissionView], tr: Translator
) -> dict[str, list[str]]:
    """Recipient id -> titles of the permissions through which it receives data now."""
    via: dict[str, list[str]] = {rid: [] for rid in catalogue.recipients}
    for perm in catalogue.permissions:
        view = by_id.get(perm.id)
        if view is not None and view.effective:
            for rid in perm.recipients:
                via[rid].append(catalogue.text(perm.notice.title, tr.locale))
    return via


def build_page(
    catalogue: Catalogue,
    views: Sequence[PermissionView],
    devices: Sequence[DeviceReport],
    tr: Translator,
    *,
    jurisdiction: str | None = None,
    deliveries: Sequence[RecipientDeliveries] = (),
    unused_since: Mapping[str, datetime] | None = None,
    gpc_signal: bool = False,
) -> PageModel:
    """The first tab. ``deliveries``: the subject's opt-outs sent to third parties;
    ``unused_since``: for grants switched off by auto-reset, since when they were unused;
    ``gpc_signal``: this request carried GPC (honoured before the page was built)."""
    by_id = {v.id: v for v in views}
    via = _receiving(catalogue, by_id, tr)
    delivered = delivery_texts(catalogue, deliveries, tr)
    recipients = {
        rid: _recipient(catalogue, rid, rec, via[rid], tr, delivered.get(rid))
        for rid, rec in catalogue.recipients.items()
    }
    groups: dict[str, list[PermissionCard]] = {"usage": [], "needed": [], "sharing": []}
    for perm in catalogue.permissions:
        view = by_id.get(perm.id)
        if view is None:
            continue
        since = (unused_since or {}).get(perm.id)
        card = _card(catalogue, perm, view, devices, recipients, tr, since)
        if not perm.toggleable:
            groups["needed"].append(card)
        elif perm.group is PermissionGroup.SHARING:
            groups["sharing"].append(card)
        else:
            groups["usage"].append(card)
    # Everything the customer can switch off (consent, and objection to legitimate interest):
    # the counter and the switches count the same things.
    switchable = groups["usage"] + groups["sharing"]
    return PageModel(
        locale=tr.locale,
        summary=summary(catalogue, views, devices, tr),
        consent_total=len(switchable),
        consent_on=sum(1 for c in switchable if c.checked),
        devices=_device_cards(catalogue, devices, tr),
        usage=tuple(groups["usage"]),
        needed=tuple(groups["needed"]),
        sharing=tuple(groups["sharing"]),
        recipients=tuple(recipients.values()),
        rules=rules_text(jurisdiction, tr),
        gpc=gpc_signal or gpc_honoured(catalogue, views),
        reconsent=reconsent_items(catalogue, views, tr),
        phrases=tuple(tuple(s) for s in summary_phrases(catalogue, views, devices, tr)),
        sections=build_sections(catalogue, [(c.id, c.checked) for c in groups["usage"]], tr),
    )
