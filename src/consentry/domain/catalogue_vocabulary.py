"""The catalogue's vocabulary: identifier, locale and text types, legal bases, recipient kinds,
permission groups, the purposes that need consent, and the frozen model every entry builds on."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
)

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


class CatalogueModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
