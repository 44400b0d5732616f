"""The catalogue: data categories, purposes, recipients, permissions and device permissions.

It is "privacy as code": a versioned YAML file, validated here. Pure: parsing YAML text is the
caller's job (see ``catalogue_io``); this module only validates the parsed structure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Self

from pydantic import (
    Field,
    model_validator,
)

from consentry.domain.catalogue_entries import (
    Category,
    Controller,
    DevicePermission,
    Permission,
    Purpose,
    Recipient,
    Webhook,
)
from consentry.domain.catalogue_signals import AD_PLATFORM_MODE_TYPES, GppSettings, TcfSettings
from consentry.domain.catalogue_vocabulary import (
    CONSENT_ONLY_PURPOSES,
    CatalogueModel,
    Identifier,
    LegalBasis,
    Locale,
    Localized,
    RecipientKind,
    storage_matches,
)

_VERSION = re.compile(r"^[0-9A-Za-z.\-]{1,40}$")


class Catalogue(CatalogueModel):
    catalogue_version: str
    controller: Controller
    locales: tuple[Locale, ...] = Field(min_length=1)
    default_locale: Locale
    categories: dict[Identifier, Category]
    purposes: dict[Identifier, Purpose]
    recipients: dict[Identifier, Recipient]
    permissions: tuple[Permission, ...] = Field(min_length=1, max_length=1000)
    device_permissions: tuple[DevicePermission, ...] = ()
    tcf: TcfSettings | None = None
    gpp: GppSettings = GppSettings()

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        if not _VERSION.match(self.catalogue_version):
            raise ValueError("catalogue_version must be 1-40 characters of [0-9A-Za-z.-]")
        if self.default_locale not in self.locales:
            raise ValueError(f"default_locale {self.default_locale!r} is not in locales")
        seen: set[str] = set()
        for index, perm in enumerate(self.permissions):
            where = f"permissions[{index}] ({perm.id})"
            if perm.id in seen:
                raise ValueError(f"{where}: duplicate permission id")
            seen.add(perm.id)
            if perm.purpose not in self.purposes:
                raise ValueError(f"{where}: unknown purpose {perm.purpose!r}")
            for name in perm.categories:
                if name not in self.categories:
                    raise ValueError(f"{where}: unknown category {name!r}")
            for name in perm.recipients:
                if name not in self.recipients:
                    raise ValueError(f"{where}: unknown recipient {name!r}")
            self._check_locales(where + ".notice.title", perm.notice.title)
            self._check_locales(where + ".notice.text", perm.notice.text)
            for old in perm.notice.history:
                self._check_locales(f"{where}.notice.history[{old.version}].title", old.title)
                self._check_locales(f"{where}.notice.history[{old.version}].text", old.text)
        for index, dev in enumerate(self.device_permissions):
            where = f"device_permissions[{index}] ({dev.id})"
            for name in dev.categories:
                if name not in self.categories:
                    raise ValueError(f"{where}: unknown category {name!r}")
            self._check_locales(where + ".title", dev.title)
            self._check_locales(where + ".text", dev.text)
        self._check_lawful_bases()
        self._check_signals()
        self._check_web()
        for name, cat in self.categories.items():
            self._check_locales(f"categories.{name}.label", cat.label)
        for name, purpose in self.purposes.items():
            self._check_locales(f"purposes.{name}.label", purpose.label)
        return self

    def _check_lawful_bases(self) -> None:
        bases: dict[tuple[str, str], tuple[str, LegalBasis]] = {}
        for perm in self.permissions:
            top = perm.purpose.split(".", 1)[0]
            if top in CONSENT_ONLY_PURPOSES and perm.legal_basis is not LegalBasis.CONSENT:
                raise ValueError(
                    f"permission {perm.id!r}: purpose {perm.purpose!r} needs consent, not "
                    f"{perm.legal_basis.value} (EDPB: no legitimate interest or 'essential' label "
                    "for advertising, marketing, sale, sharing or tracking)"
                )
            for name in perm.categories:
                if self.categories[name].device and perm.legal_basis is not LegalBasis.CONSENT:
                    raise ValueError(
                        f"permission {perm.id!r}: device data {name!r} is read only with consent"
                    )
                other = bases.setdefault((perm.purpose, name), (perm.id, perm.legal_basis))
                if other[1] is not perm.legal_basis:
                    raise ValueError(
                        f"permissions {other[0]!r} and {perm.id!r} cover {perm.purpose!r} on "
                        f"{name!r} with different legal bases: a withdrawal must stop the "
                        "processing, not switch it to another basis"
                    )

    def _check_signals(self) -> None:
        owners: dict[int, str] = {}
        for name, recipient in self.recipients.items():
            if recipient.gvl_id is not None:
                other = owners.setdefault(recipient.gvl_id, name)
                if other != name:
                    raise ValueError(
                        f"recipients {other!r} and {name!r} have the same gvl_id {recipient.gvl_id}"
                    )
        for perm in self.permissions:
            try:
                perm.check_signals()
            except ValueError as exc:
                raise ValueError(f"permission {perm.id!r}: {exc}") from exc
            platform = sorted(
                t.value for t in AD_PLATFORM_MODE_TYPES.intersection(perm.consent_mode)
            )
            kinds = {self.recipients[r].kind for r in perm.recipients}
            if platform and RecipientKind.AD_NETWORK not in kinds:
                raise ValueError(
                    f"permission {perm.id!r}: consent_mode {', '.join(platform)} sends data to "
                    "the ad platform, but none of its recipients is an ad_network: a customer "
                    "would be signalled as consenting to share what this notice keeps in house"
                )
            if perm.tcf is None:
                continue
            if self.tcf is None:
                raise ValueError(
                    f"permission {perm.id!r} maps to TCF but the catalogue has no 'tcf' settings "
                    "(cmp_id, vendor_list_version)"
                )
            named = {self.recipients[r].gvl_id for r in perm.recipients}
            unnamed = sorted(set(perm.tcf.vendors or ()) - named)
            if unnamed:
                raise ValueError(
                    f"permission {perm.id!r}: tcf.vendors {unnamed} are not the gvl_id of any of "
                    "its recipients, so its notice does not name them"
                )

    def _check_web(self) -> None:
        """One owner per web domain (a request must trace to one recipient), and no name
        listed twice in one permission's ``cookies``."""
        owners: dict[str, str] = {}
        for name, recipient in self.recipients.items():
            for domain in recipient.domains:
                other = owners.setdefault(domain, name)
                if other != name:
                    raise ValueError(
                        f"recipients {other!r} and {name!r} both list domain {domain!r}: a "
                        "request to it must trace to one recipient"
                    )
        for perm in self.permissions:
            if len(set(perm.cookies)) != len(perm.cookies):
                raise ValueError(f"permission {perm.id!r}: a name is listed twice in cookies")

    def recipient_of_host(self, host: str) -> str | None:
        """The recipient whose ``domains`` cover ``host`` (the longest match), or None."""
        host = host.lower().rstrip(".")
        best: tuple[int, str] | None = None
        for name, recipient in self.recipients.items():
            for domain in recipient.domains:
                if (host == domain or host.endswith("." + domain)) and (
                    best is None or len(domain) > best[0]
                ):
                    best = (len(domain), name)
        return best[1] if best else None

    def permissions_of_storage(self, name: str) -> tuple[str, ...]:
        """The permissions whose ``cookies`` declare the cookie or storage key ``name``."""
        return tuple(
            perm.id
            for perm in self.permissions
            if any(storage_matches(pattern, name) for pattern in perm.cookies)
        )

    def _check_locales(self, where: str, texts: Localized) -> None:
        missing = [loc for loc in self.locales if loc not in texts]
        if missing:
            raise ValueError(f"{where}: missing text for locale(s) {', '.join(missing)}")

    def with_webhooks(self, hooks: Mapping[str, Webhook]) -> Catalogue:
        """A copy in which the named recipients' webhooks are ``hooks`` (the demo points its
        partners at its own receiver this way). Webhooks are operator configuration: nothing
        shown to subjects or replicas changes."""
        unknown = sorted(set(hooks) - set(self.recipients))
        if unknown:
            raise ValueError(f"no such recipient(s): {', '.join(unknown)}")
        recipients = {
            name: r.model_copy(update={"webhook": hooks[name]}) if name in hooks else r
            for name, r in self.recipients.items()
        }
        return self.model_copy(update={"recipients": recipients})

    def permission(self, permission_id: str) -> Permission | None:
        for perm in self.permissions:
            if perm.id == permission_id:
                return perm
        return None

    def text(self, texts: Localized, locale: str) -> str:
        return texts.get(locale) or texts[self.default_locale]
