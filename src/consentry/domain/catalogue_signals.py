"""A catalogue's mappings to industry signals (IAB TCF, Google Consent Mode, GPP). All optional."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    Field,
    model_validator,
)

from consentry.domain.catalogue_vocabulary import CatalogueModel, CountryCode

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


class TcfMapping(CatalogueModel):
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


class TcfSettings(CatalogueModel):
    """The publisher's TCF identity, written into every TC string."""

    cmp_id: int = Field(ge=2, le=4095)
    cmp_version: int = Field(default=1, ge=0, le=4095)
    consent_screen: int = Field(default=1, ge=0, le=63)
    vendor_list_version: int = Field(ge=1, le=4095)
    # 4 = TCF 2.2, 5 = TCF 2.3 (disclosed vendors mandatory). Older strings are invalid.
    tcf_policy_version: int = Field(default=5, ge=4, le=63)
    publisher_cc: CountryCode | None = None  # default: the controller's country


class GppSettings(CatalogueModel):
    """Fields of the GPP usnat section that come from contracts, not from the subject."""

    mspa_covered_transaction: bool = False
