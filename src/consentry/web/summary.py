"""The overview sentence at the top of the Permissions page, in plain words: where the
subject's location goes, whether their data is sold or shared, and whether it leaves the EEA.
Pure; the rules it counts by (sale, third parties, device grants) are shared with the cards."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.catalogue_vocabulary import RecipientKind
from consentry.domain.jurisdictions import EEA
from consentry.domain.state import DeviceReport
from consentry.domain.views import PermissionView
from consentry.web.i18n import Translator

PRECISE_LOCATION = "device.location.precise"
APPROXIMATE_LOCATION = "device.location.approximate"
# Recipients that get data for their own ends: what "sharing" means to a customer (and CCPA).
THIRD_PARTIES = frozenset(
    {RecipientKind.PARTNER, RecipientKind.AD_NETWORK, RecipientKind.DATA_BUYER}
)


def is_sale(catalogue: Catalogue, perm: Permission) -> bool:
    if perm.purpose.split(".", 1)[0] == "sale":
        return True
    return any(catalogue.recipients[r].kind is RecipientKind.DATA_BUYER for r in perm.recipients)


def device_allows(catalogue: Catalogue, category: str, devices: Sequence[DeviceReport]) -> bool:
    need = catalogue.categories[category].device
    if need is None:
        return True
    return any(d.os_permissions.get(need.permission) in need.allows for d in devices)


def _location_users(
    catalogue: Catalogue,
    effective: Sequence[Permission],
    devices: Sequence[DeviceReport],
    category: str,
) -> list[str] | None:
    """Recipients other than us that get this location category now; None if nobody does."""
    if category not in catalogue.categories or not device_allows(catalogue, category, devices):
        return None
    users = {r for p in effective if category in p.categories for r in p.recipients}
    if not users:
        return None
    return [r for r in users if catalogue.recipients[r].kind is not RecipientKind.CONTROLLER]


def _location_clause(
    catalogue: Catalogue,
    effective: Sequence[Permission],
    devices: Sequence[DeviceReport],
    tr: Translator,
) -> str:
    controller = catalogue.controller.name
    precise = _location_users(catalogue, effective, devices, PRECISE_LOCATION)
    if precise:
        return tr.ngettext(
            "you share your precise location with %(num)d partner",
            "you share your precise location with %(num)d partners",
            len(precise),
        )
    if precise is not None:
        return tr.gettext("only %(controller)s uses your precise location", controller=controller)
    approximate = _location_users(catalogue, effective, devices, APPROXIMATE_LOCATION)
    if approximate:
        return tr.ngettext(
            "you share your approximate location with %(num)d partner",
            "you share your approximate location with %(num)d partners",
            len(approximate),
        )
    if approximate is not None:
        return tr.gettext(
            "only %(controller)s uses your approximate location", controller=controller
        )
    return tr.gettext("your location is not used")


def _sentences(
    parts: Sequence[Sequence[tuple[str, str]]], tr: Translator
) -> list[list[tuple[str, str]]]:
    """Each sentence's clauses, the first capitalised, with the joining words kept apart."""
    out: list[list[tuple[str, str]]] = []
    for clauses in parts:
        sentence = [(text, href) for text, href in clauses]
        first, href = sentence[0]
        sentence[0] = (first[:1].upper() + first[1:], href)
        out.append(sentence)
    return out


def summary_phrases(
    catalogue: Catalogue,
    views: Sequence[PermissionView],
    devices: Sequence[DeviceReport],
    tr: Translator,
) -> list[list[tuple[str, str]]]:
    """The overview as sentences of (clause, anchor of the switch it is about)."""
    on = {v.id for v in views if v.effective}
    effective = [p for p in catalogue.permissions if p.id in on]
    receiving = {r for p in effective for r in p.recipients}
    partners = [r for r in receiving if catalogue.recipients[r].kind in THIRD_PARTIES]
    buyers = {
        r
        for p in effective
        if is_sale(catalogue, p)
        for r in p.recipients
        if catalogue.recipients[r].kind is not RecipientKind.CONTROLLER
    }
    abroad = [r for r in receiving if catalogue.recipients[r].country not in EEA]

    location = _location_clause(catalogue, effective, devices, tr)
    if buyers:
        sale = tr.ngettext(
            "your data is sold to %(num)d company",
            "your data is sold to %(num)d companies",
            len(buyers),
        )
    else:
        sale = tr.gettext("your data is not sold")
    if partners:
        sharing = tr.ngettext(
            "you share your data with %(num)d partner",
            "you share your data with %(num)d partners",
            len(partners),
        )
    else:
        sharing = tr.gettext("your data is not shared with partners")
    if abroad:
        transfers = tr.ngettext(
            "%(num)d company outside the EEA receives it",
            "%(num)d companies outside the EEA receive it",
            len(abroad),
        )
    else:
        transfers = tr.gettext("it stays within the EEA")
    return _sentences(
        [
            [
                (location, _anchor(catalogue, _is_location, "#features")),
                (sale, _anchor(catalogue, lambda p: is_sale(catalogue, p), "#sold-shared")),
            ],
            [
                (sharing, _anchor(catalogue, _is_sharing, "#sold-shared")),
                (transfers, "#recipients"),
            ],
        ],
        tr,
    )


def _is_location(perm: Permission) -> bool:
    return bool({PRECISE_LOCATION, APPROXIMATE_LOCATION}.intersection(perm.categories))


def _is_sharing(perm: Permission) -> bool:
    return perm.purpose.split(".", 1)[0] == "sharing"


def _anchor(catalogue: Catalogue, test: Callable[[Permission], bool], fallback: str) -> str:
    """The first switch the clause is about, or a section when there is none."""
    perm = next((p for p in catalogue.permissions if p.toggleable and test(p)), None)
    return f"#p-{perm.id}" if perm is not None else fallback


def summary(
    catalogue: Catalogue,
    views: Sequence[PermissionView],
    devices: Sequence[DeviceReport],
    tr: Translator,
) -> str:
    """The overview in plain words: location, sharing, sale and transfers outside the EEA."""
    sentences = summary_phrases(catalogue, views, devices, tr)
    return " ".join(
        tr.gettext("; ").join(text for text, _ in sentence) + tr.gettext(".")
        for sentence in sentences
    )
