""" "Accept all" never sells silently: what the confirmation step names before accepting.

Accepting everything would switch on what matters most to a customer: the sale of their data
to a data buyer, tracking across other apps, transfers outside the EEA. The confirmation names
each one that is off now, in plain words with the companies and their countries, and offers
"Accept all" and "Accept all except these" with equal weight. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.views import PermissionView
from consentry.web.i18n import Translator
from consentry.web.summary import is_sale


@dataclass(frozen=True, slots=True)
class SensitiveItem:
    id: str
    title: str
    reasons: tuple[str, ...]
    recipients: tuple[str, ...]


def _tracks(perm: Permission) -> bool:
    return perm.purpose.split(".", 1)[0] == "tracking"


def is_sensitive(catalogue: Catalogue, perm: Permission) -> bool:
    outside = any(catalogue.recipients[r].outside_eea for r in perm.recipients)
    return perm.toggleable and (is_sale(catalogue, perm) or _tracks(perm) or outside)


def _named(catalogue: Catalogue, rid: str, tr: Translator) -> str:
    recipient = catalogue.recipients[rid]
    return f"{recipient.name} ({tr.country(recipient.country)})"


def sensitive_items(
    catalogue: Catalogue, views: Sequence[PermissionView], tr: Translator
) -> tuple[SensitiveItem, ...]:
    """The sensitive permissions that "Accept all" would switch on (those off now)."""
    on = {v.id for v in views if v.effective}
    items = []
    for perm in catalogue.permissions:
        if perm.id in on or not is_sensitive(catalogue, perm):
            continue
        reasons = []
        if is_sale(catalogue, perm):
            reasons.append(tr.gettext("Your data is sold to a company that buys personal data."))
        if _tracks(perm):
            reasons.append(
                tr.gettext("You are followed across other apps and websites, for advertising.")
            )
        countries = sorted(
            {
                tr.country(catalogue.recipients[r].country)
                for r in perm.recipients
                if catalogue.recipients[r].outside_eea
            }
        )
        if countries:
            reasons.append(
                tr.gettext(
                    "Your data leaves the European Economic Area, to: %(countries)s.",
                    countries=", ".join(countries),
                )
            )
        items.append(
            SensitiveItem(
                id=perm.id,
                title=catalogue.text(perm.notice.title, tr.locale),
                reasons=tuple(reasons),
                recipients=tuple(_named(catalogue, r, tr) for r in perm.recipients),
            )
        )
    return tuple(items)
