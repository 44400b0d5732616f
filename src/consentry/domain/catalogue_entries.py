"""The catalogue's entries: data categories, purposes, recipients, notices, permissions, device
permissions and the controller, each validated on its own (cross-references: ``catalogue``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import (
    Field,
    HttpUrl,
    StringConstraints,
    model_validator,
)

from consentry.domain.catalogue_signals import (
    CONSENT_ONLY_MODE_TYPES,
    ConsentModeType,
    GvlVendorId,
    TcfMapping,
)
from consentry.domain.catalogue_vocabulary import (
    SALE_OR_SHARING_PURPOSES,
    CatalogueModel,
    CountryCode,
    DefaultState,
    Identifier,
    LegalBasis,
    Localized,
    PermissionGroup,
    RecipientKind,
    StorageName,
    WebDomain,
)
from consentry.domain.jurisdictions import EEA, PROTECTIVE_REGIONS, region_of


class DeviceRequirement(CatalogueModel):
    """The OS grant a device data category needs: ``permission`` must report one of ``allows``."""

    permission: Identifier
    allows: tuple[str, ...] = Field(min_length=1)


class Category(CatalogueModel):
    label: Localized
    sensitive: bool = False
    device: DeviceRequirement | None = None


class Purpose(CatalogueModel):
    label: Localized


class Webhook(CatalogueModel):
    """Where a recipient hears of opt-outs and erasures (signed; see ``events/webhooks.py``).
    The signing secret is read from the named environment variable, never from the file."""

    url: HttpUrl  # http or https only
    secret_env: Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]{0,99}$")]


class Recipient(CatalogueModel):
    name: str = Field(min_length=1, max_length=200)
    country: CountryCode
    kind: RecipientKind
    description: Localized | None = None
    # The recipient's id on the IAB Global Vendor List, when it is a TCF vendor.
    gvl_id: GvlVendorId | None = None
    # Operator configuration, not shown to subjects or sent to SDK replicas (excluded from dumps).
    webhook: Webhook | None = Field(default=None, exclude=True)
    # The web hosts its tags load from or send to (each covers its subdomains): how a browser
    # request is traced to a recipient (consentry.js, ``consentry verify-site``).
    domains: tuple[WebDomain, ...] = ()

    @property
    def outside_eea(self) -> bool:
        return self.country not in EEA


class NoticeVersion(CatalogueModel):
    """The wording of an earlier version of a notice, kept so that receipts, exports and the
    evidence pack can show what a customer read when they chose."""

    version: str = Field(min_length=1, max_length=40)
    title: Localized
    text: Localized


class Notice(CatalogueModel):
    version: str = Field(min_length=1, max_length=40)
    # Earlier versions whose grants still count: the change since them was not material.
    compatible_versions: tuple[str, ...] = ()
    title: Localized
    text: Localized
    change_summary: Localized | None = None
    # Earlier versions' wording, newest first or in any order (one entry per version).
    history: tuple[NoticeVersion, ...] = Field(default=(), max_length=100)

    @model_validator(mode="after")
    def _history_is_consistent(self) -> Self:
        seen = {self.version}
        for old in self.history:
            if old.version in seen:
                raise ValueError(
                    f"notice.history: version {old.version!r} appears twice (or is the current one)"
                )
            seen.add(old.version)
        return self

    def accepts(self, version: str) -> bool:
        return version == self.version or version in self.compatible_versions

    def wording(self, version: str) -> NoticeVersion | None:
        """Title and text of ``version`` as shown then: the current one or a kept earlier one;
        None when the catalogue no longer holds that version's text."""
        if version == self.version:
            return NoticeVersion(version=self.version, title=self.title, text=self.text)
        for old in self.history:
            if old.version == version:
                return old
        return None


class Permission(CatalogueModel):
    id: Identifier
    purpose: Identifier
    categories: tuple[Identifier, ...] = Field(min_length=1)
    recipients: tuple[Identifier, ...] = Field(min_length=1)
    legal_basis: LegalBasis
    group: PermissionGroup = PermissionGroup.USAGE
    # Jurisdiction code (BE, US-CA), region (EEA, UK) or "*" -> state when the subject never chose.
    defaults: dict[str, DefaultState] = Field(default_factory=dict)
    notice: Notice
    tcf: TcfMapping | None = None
    consent_mode: tuple[ConsentModeType, ...] = ()
    # The cookies and storage keys (local/session storage) its tags may set; removed from the
    # browser when no permission declaring them allows any more. "name*" matches a prefix.
    cookies: tuple[StorageName, ...] = ()

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

    def check_signals(self) -> None:
        """Signal mappings that fit the legal basis (run by the catalogue after its lawful-basis
        checks, so a wrong basis is reported as such first)."""
        basis = self.legal_basis
        if self.tcf is not None:
            if basis is not LegalBasis.CONSENT and (self.tcf.purposes or self.tcf.special_features):
                raise ValueError(
                    f"tcf.purposes and tcf.special_features are consent signals; this permission "
                    f"rests on {basis.value}"
                )
            if (
                basis is not LegalBasis.LEGITIMATE_INTEREST
                and self.tcf.legitimate_interest_purposes
            ):
                raise ValueError(
                    "tcf.legitimate_interest_purposes needs a legitimate_interest permission, not "
                    f"{basis.value}"
                )
        if len(set(self.consent_mode)) != len(self.consent_mode):
            raise ValueError("consent_mode: a type is listed twice")
        needs_consent = sorted(
            t.value for t in CONSENT_ONLY_MODE_TYPES.intersection(self.consent_mode)
        )
        if needs_consent and basis is not LegalBasis.CONSENT:
            raise ValueError(
                f"consent_mode: {', '.join(needs_consent)} can only be granted by consent, not "
                f"{basis.value}"
            )

    def tcf_vendors(self, recipients: Mapping[str, Recipient]) -> frozenset[int]:
        """The GVL ids this permission signals: its mapping's list, else its recipients' ids."""
        if self.tcf is None:
            return frozenset()
        if self.tcf.vendors is not None:
            return frozenset(self.tcf.vendors)
        return frozenset(gvl for r in self.recipients if (gvl := recipients[r].gvl_id) is not None)


class DevicePermission(CatalogueModel):
    id: Identifier
    values: tuple[str, ...] = Field(min_length=1)
    categories: tuple[Identifier, ...] = ()
    title: Localized
    text: Localized


class Controller(CatalogueModel):
    name: str = Field(min_length=1, max_length=200)
    contact: str = Field(min_length=3, max_length=200)
    country: CountryCode
