"""The catalogue: data categories, purposes, recipients, permissions and device permissions.

It is "privacy as code": a versioned YAML file, validated here. Pure: parsing YAML text is the
caller's job (see ``catalogue_io``); this module only validates the parsed structure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    model_validator,
)

from consentry.domain.jurisdictions import EEA, PROTECTIVE_REGIONS, region_of

Identifier = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$", max_length=100)
]
Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Localized = dict[Locale, Annotated[str, StringConstraints(min_length=1, max_length=2000)]]
# A web host a recipient loads from or sends to: lower-case DNS labels; it covers its subdomains.
WebDomain = Annotated[
    str,
    StringConstraints(
        max_length=253,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    ),
]
# A cookie or storage key a permission's tags may set; a trailing "*" matches any suffix.
StorageName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,100}\*?$")]


def storage_matches(pattern: str, name: str) -> bool:
    """A ``cookies:`` entry against a cookie or storage key name ("_ga*" is a prefix)."""
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


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


# -- Mappings to industry signals (IAB TCF, Google Consent Mode). All optional. -----------------

TcfPurposeId = Annotated[int, Field(ge=1, le=11)]
TcfSpecialFeatureId = Annotated[int, Field(ge=1, le=2)]
GvlVendorId = Annotated[int, Field(ge=1, le=65535)]
# TCF: purpose 1 (store/access on a device) never rests on legitimate interest, and since
# policy version 4 (TCF 2.2) neither do purposes 3-6 (profiles for ads and content).
TCF_LI_FORBIDDEN_PURPOSES = frozenset({1, 3, 4, 5, 6})


class ConsentModeType(StrEnum):
    """Google Consent Mode v2 types, in the order Google documents them."""

    AD_STORAGE = "ad_storage"
    ANALYTICS_STORAGE = "analytics_storage"
    AD_USER_DATA = "ad_user_data"
    AD_PERSONALIZATION = "ad_personalization"
    FUNCTIONALITY_STORAGE = "functionality_storage"
    PERSONALIZATION_STORAGE = "personalization_storage"
    SECURITY_STORAGE = "security_storage"


# Consent Mode types that only a consent permission may grant (ePrivacy: non-essential storage).
CONSENT_ONLY_MODE_TYPES = frozenset(
    {
        ConsentModeType.AD_STORAGE,
        ConsentModeType.ANALYTICS_STORAGE,
        ConsentModeType.AD_USER_DATA,
        ConsentModeType.AD_PERSONALIZATION,
        ConsentModeType.PERSONALIZATION_STORAGE,
    }
)


# Consent Mode types that send the customer's data to the ad platform (Google) or let it
# personalise ads with them: only a permission whose recipients include an ad network may grant
# them, so a customer who refused sharing with ad networks is never reported as consenting.
AD_PLATFORM_MODE_TYPES = frozenset(
    {ConsentModeType.AD_USER_DATA, ConsentModeType.AD_PERSONALIZATION}
)


def _no_duplicates(where: str, values: tuple[int, ...]) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{where}: duplicate ids {sorted(values)}")


class TcfMapping(_Model):
    """What a permission means in the IAB TCF. ``purposes`` and ``special_features`` are consent
    signals (consent permissions only); ``legitimate_interest_purposes`` are transparency signals
    (legitimate-interest permissions only). ``vendors`` (GVL ids) defaults to the ``gvl_id`` of
    the permission's recipients; a list given here must name only those: a vendor the notice
    does not name cannot get a signal."""

    purposes: tuple[TcfPurposeId, ...] = ()
    legitimate_interest_purposes: tuple[TcfPurposeId, ...] = ()
    special_features: tuple[TcfSpecialFeatureId, ...] = ()
    vendors: tuple[GvlVendorId, ...] | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        _no_duplicates("tcf.purposes", self.purposes)
        _no_duplicates("tcf.legitimate_interest_purposes", self.legitimate_interest_purposes)
        _no_duplicates("tcf.special_features", self.special_features)
        _no_duplicates("tcf.vendors", self.vendors or ())
        forbidden = sorted(
            TCF_LI_FORBIDDEN_PURPOSES.intersection(self.legitimate_interest_purposes)
        )
        if forbidden:
            raise ValueError(
                f"tcf.legitimate_interest_purposes: purposes {forbidden} cannot rest on legitimate "
                "interest (TCF: never purpose 1; purposes 3-6 since policy version 4)"
            )
        if not (self.purposes or self.legitimate_interest_purposes or self.special_features):
            raise ValueError("tcf: map at least one purpose or special feature")
        return self


class TcfSettings(_Model):
    """The publisher's TCF identity, written into every TC string."""

    cmp_id: int = Field(ge=2, le=4095)
    cmp_version: int = Field(default=1, ge=0, le=4095)
    consent_screen: int = Field(default=1, ge=0, le=63)
    vendor_list_version: int = Field(ge=1, le=4095)
    # 4 = TCF 2.2, 5 = TCF 2.3 (disclosed vendors mandatory). Older strings are invalid.
    tcf_policy_version: int = Field(default=5, ge=4, le=63)
    publisher_cc: CountryCode | None = None  # default: the controller's country


class GppSettings(_Model):
    """Fields of the GPP usnat section that come from contracts, not from the subject."""

    mspa_covered_transaction: bool = False


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


class Webhook(_Model):
    """Where a recipient hears of opt-outs and erasures (signed; see ``events/webhooks.py``).
    The signing secret is read from the named environment variable, never from the file."""

    url: HttpUrl  # http or https only
    secret_env: Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]{0,99}$")]


class Recipient(_Model):
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


class NoticeVersion(_Model):
    """The wording of an earlier version of a notice, kept so that receipts, exports and the
    evidence pack can show what a customer read when they chose."""

    version: str = Field(min_length=1, max_length=40)
    title: Localized
    text: Localized


class Notice(_Model):
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
