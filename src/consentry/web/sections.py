"""How the first tab is laid out so that every switch is found in seconds.

Sale and sharing come first, open. The other uses are split into short collapsible sections,
each headed by a one-line state ("3 of 8 on"), so that opening one shows all of its switches
on about one screen. The summary sentence is split into phrases that each link to the switch
they are about. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.catalogue_vocabulary import LegalBasis
from consentry.web.i18n import Translator

# Section ids, in page order; each is also the anchor of its collapsible block.
FEATURES = "features"
PERSONAL = "personal"
SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Phrase:
    """One clause of the summary and the switch (or section) it is about."""

    text: str
    href: str


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    title: str
    permission_ids: tuple[str, ...]
    on: int
    total: int
    state_text: str


def section_of(catalogue: Catalogue, perm: Permission) -> str:
    """Which collapsible section a switchable use (not sale or sharing) belongs to."""
    if perm.legal_basis is not LegalBasis.CONSENT:
        return SERVICE
    if any(catalogue.categories[c].device is not None for c in perm.categories):
        return FEATURES
    return PERSONAL


def section_title(section: str, tr: Translator) -> str:
    return {
        FEATURES: tr.gettext("Phone features"),
        PERSONAL: tr.gettext("Personalisation, offers, statistics"),
        SERVICE: tr.gettext("Security and orders"),
    }[section]


def state_line(on: int, total: int, tr: Translator) -> str:
    """The one-line state of a section: how many of its switches are on."""
    return tr.ngettext("%(on)d of %(num)d on", "%(on)d of %(num)d on", total, on=on)


def build_sections(
    catalogue: Catalogue, checked: Sequence[tuple[str, bool]], tr: Translator
) -> tuple[Section, ...]:
    """``checked``: (permission id, effective) of every switchable use outside sale/sharing,
    in catalogue order."""
    members: dict[str, list[tuple[str, bool]]] = {FEATURES: [], PERSONAL: [], SERVICE: []}
    for pid, is_on in checked:
        perm = catalogue.permission(pid)
        if perm is not None:
            members[section_of(catalogue, perm)].append((pid, is_on))
    sections = []
    for sid, items in members.items():
        on = sum(1 for _, checked_now in items if checked_now)
        sections.append(
            Section(
                id=sid,
                title=section_title(sid, tr),
                permission_ids=tuple(pid for pid, _ in items),
                on=on,
                total=len(items),
                state_text=state_line(on, len(items), tr),
            )
        )
    return tuple(s for s in sections if s.total or s.id == SERVICE)
