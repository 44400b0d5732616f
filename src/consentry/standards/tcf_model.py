"""IAB TCF v2 TC strings: the model (core segment fields, publisher restrictions, publisher TC)
and the format's constants. Ids are 1-based everywhere."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_VENDOR_ID = 0xFFFF
# Vendor ids one TC string may decode to, over all its sets: the Global Vendor List has fewer
# than 5,000 ids, so real strings stay far below; about 6 MB of Python ints and sets at most.
MAX_DECODED_IDS = 100_000
# The reference encoder (iabtcf-es) pads every segment to a multiple of 24 bits, so the base64url
# text never needs "=" and its length is a multiple of 4.
SEGMENT_ALIGNMENT = 24

SEGMENT_DISCLOSED_VENDORS = 1
SEGMENT_ALLOWED_VENDORS = 2
SEGMENT_PUBLISHER_TC = 3
# The TC model's fields that hold a set of purpose, feature or vendor ids.
ID_SET_FIELDS = (
    "special_feature_optins",
    "purposes_consent",
    "purposes_li_transparency",
    "vendor_consents",
    "vendor_legitimate_interests",
)


class RestrictionType(IntEnum):
    NOT_ALLOWED = 0
    REQUIRE_CONSENT = 1
    REQUIRE_LEGITIMATE_INTEREST = 2
    UNDEFINED = 3


def _ids(values: Iterable[int]) -> frozenset[int]:
    return values if isinstance(values, frozenset) else frozenset(values)


@dataclass(frozen=True)
class PublisherRestriction:
    """One publisher restriction entry: ``restriction_type`` applies to ``purpose_id`` for
    every vendor in ``vendors``."""

    purpose_id: int
    restriction_type: RestrictionType
    vendors: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "restriction_type", RestrictionType(self.restriction_type))
        object.__setattr__(self, "vendors", _ids(self.vendors))


@dataclass(frozen=True)
class PublisherTC:
    """The publisher purposes transparency and consent segment (SegmentType 3).

    ``num_custom_purposes`` is raised to the highest custom purpose id if it is smaller.
    """

    purposes_consent: frozenset[int] = frozenset()
    purposes_li_transparency: frozenset[int] = frozenset()
    custom_purposes_consent: frozenset[int] = frozenset()
    custom_purposes_li_transparency: frozenset[int] = frozenset()
    num_custom_purposes: int = 0

    def __post_init__(self) -> None:
        for name in (
            "purposes_consent",
            "purposes_li_transparency",
            "custom_purposes_consent",
            "custom_purposes_li_transparency",
        ):
            object.__setattr__(self, name, _ids(getattr(self, name)))
        highest = max(
            self.custom_purposes_consent | self.custom_purposes_li_transparency, default=0
        )
        object.__setattr__(self, "num_custom_purposes", max(self.num_custom_purposes, highest))


@dataclass(frozen=True, kw_only=True)
class TCString:
    """A decoded TC string. Fields follow the core segment in spec order.

    Sets are stored as frozensets (any iterable of ints is accepted); ``consent_language`` and
    ``publisher_cc`` are upper-cased. ``disclosed_vendors`` and ``allowed_vendors`` are None
    when their segment is absent (an empty frozenset is a present-but-empty segment).
    """

    version: int = 2
    created: datetime
    last_updated: datetime
    cmp_id: int
    cmp_version: int = 0
    consent_screen: int = 0
    consent_language: str = "EN"
    vendor_list_version: int
    tcf_policy_version: int = 5
    is_service_specific: bool = True
    use_non_standard_texts: bool = False
    special_feature_optins: frozenset[int] = frozenset()
    purposes_consent: frozenset[int] = frozenset()
    purposes_li_transparency: frozenset[int] = frozenset()
    purpose_one_treatment: bool = False
    publisher_cc: str = "AA"
    vendor_consents: frozenset[int] = frozenset()
    vendor_legitimate_interests: frozenset[int] = frozenset()
    publisher_restrictions: tuple[PublisherRestriction, ...] = ()
    disclosed_vendors: frozenset[int] | None = None
    publisher_tc: PublisherTC | None = None
    allowed_vendors: frozenset[int] | None = None

    def __post_init__(self) -> None:
        for name in ID_SET_FIELDS:
            object.__setattr__(self, name, _ids(getattr(self, name)))
        for name in ("disclosed_vendors", "allowed_vendors"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _ids(getattr(self, name)))
        object.__setattr__(self, "publisher_restrictions", tuple(self.publisher_restrictions))
        object.__setattr__(self, "consent_language", self.consent_language.upper())
        object.__setattr__(self, "publisher_cc", self.publisher_cc.upper())
