"""The catalogue: data categories, purposes, recipients, permissions and device permissions.

It is "privacy as code": a versioned YAML file, validated here. Pure: parsing YAML text is the
caller's job (see ``catalogue_io``); this module only validates the parsed structure.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from consentry.domain.jurisdictions import EEA, PROTECTIVE_REGIONS, region_of

Identifier = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$", max_length=100)
]
Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Localized = dict[Locale, Annotated[str, StringConstraints(min_length=1, max_length=2000)]]


class LegalBasis(StrEnum):
    CONSENT = "consent"
    CONTRACT = "contract"
    LEGITIMATE_INTEREST = "legitimate_interest"
    LEGAL_OBLIGATION = "legal_obligation"


class DefaultState(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"


class RecipientKind(StrEnum):
    CONTROLLER = "controller"
    PROCESSOR = "processor"
    PARTNER = "partner"
    AD_NETWORK = "ad_network"
    DATA_BUYER = "data_buyer"


class PermissionGroup(StrEnum):
    """Where the Permissions page shows a permission."""

    USAGE = "usage"
    SHARING = "sharing"


# Purposes (by their first dotted part) that a do-not-sell-or-share request (or GPC) withdraws:
# selling, sharing, and cross-context behavioural advertising and tracking.
SALE_OR_SHARING_PURPOSES = frozenset({"sale", "sharing", "advertising", "tracking"})
# Purposes (by their first dotted part) that only consent can justify.
CONSENT_ONLY_PURPOSES = frozenset({"advertising", "marketing", "sale", "sharing", "tracking"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceRequirement(_Model):
    """The OS grant a device data category needs: ``permission`` must report one of ``allows``."""

    permission: Identifier
    allows: tuple[str, ...] = Field(min_length=1)


class Category(_Model):
    label: Localized
    sensitive: bool = False
    device: DeviceRequirement | None = None


class Purpose(_Model):
    label: Localized


class Recipient(_Model):
    name: str = Field(min_length=1, max_length=200)
    country: CountryCode
    kind: RecipientKind
    description: Localized | None = None

    @property
    def outside_eea(self) -> bool:
        return self.country not in EEA


class Notice(_Model):
    version: str = Field(min_length=1, max_length=40)
    # Earlier versions whose grants still count: the change since them was not material.
    compatible_versions: tuple[str, ...] = ()
    title: Localized
    text: Localized
    change_summary: Localized | None = None

    def accepts(self, version: str) -> bool:
        return version == self.version or version in self.compatible_versions


class Permission(_Model):
    id: Identifier
    purpose: Identifier
    categories: tuple[Identifier, ...] = Field(min_length=1)
    recipients: tuple[Identifier, ...] = Field(min_length=1)
    legal_basis: LegalBasis
    group: PermissionGroup = PermissionGroup.USAGE
    # Jurisdiction code (BE, US-CA), region (EEA, UK) or "*" -> state when the subject never chose.
    defaults: dict[str, DefaultState] = Field(default_factory=dict)
    notice: Notice

    @property
    def toggleable(self) -> bool:
        return self.legal_basis in (LegalBasis.CONSENT, LegalBasis.LEGITIMATE_INTEREST)

    @property
    def sale_or_sharing(self) -> bool:
        """What "do not sell or share" (CCPA) and Global Privacy Control switch off."""
        return self.purpose.split(".", 1)[0] in SALE_OR_SHARING_PURPOSES

    @model_validator(mode="after")
    def _defaults_are_lawful(self) -> Self:
        if self.legal_basis is LegalBasis.CONSENT:
            if "*" not in self.defaults:
                raise ValueError("a consent permission needs a '*' (fallback) default")
            for key, state in self.defaults.items():
                protected = key == "*" or key in PROTECTIVE_REGIONS
                if state is DefaultState.GRANTED and (protected or region_of(key) != key):
                    raise ValueError(
                        f"consent cannot default to granted in {key!r} (opt-in rules apply "
                        "there): silence is not consent"
                    )
        elif self.defaults:
            raise ValueError(
                f"only consent permissions take defaults; {self.legal_basis.value} is fixed"
            )
        return self


class DevicePermission(_Model):
    id: Identifier
    values: tuple[str, ...] = Field(min_length=1)
    categories: tuple[Identifier, ...] = ()
    title: Localized
    text: Localized


_VERSION = re.compile(r"^[0-9A-Za-z.\-]{1,40}$")


class Controller(_Model):
    name: str = Field(min_length=1, max_length=200)
    contact: str = Field(min_length=3, max_length=200)
    country: CountryCode


class Catalogue(_Model):
    catalogue_version: str
    controller: Controller
    locales: tuple[Locale, ...] = Field(min_length=1)
    default_locale: Locale
    categories: dict[Identifier, Category]
    purposes: dict[Identifier, Purpose]
    recipients: dict[Identifier, Recipient]
    permissions: tuple[Permission, ...] = Field(min_length=1, max_length=1000)
    device_permissions: tuple[DevicePermission, ...] = ()

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
        for index, dev in enumerate(self.device_permissions):
            where = f"device_permissions[{index}] ({dev.id})"
            for name in dev.categories:
                if name not in self.categories:
                    raise ValueError(f"{where}: unknown category {name!r}")
            self._check_locales(where + ".title", dev.title)
            self._check_locales(where + ".text", dev.text)
        self._check_lawful_bases()
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

    def _check_locales(self, where: str, texts: Localized) -> None:
        missing = [loc for loc in self.locales if loc not in texts]
        if missing:
            raise ValueError(f"{where}: missing text for locale(s) {', '.join(missing)}")

    def permission(self, permission_id: str) -> Permission | None:
        for perm in self.permissions:
            if perm.id == permission_id:
                return perm
        return None

    def text(self, texts: Localized, locale: str) -> str:
        return texts.get(locale) or texts[self.default_locale]
