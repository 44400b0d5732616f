"""IAB TCF v2 TC strings (TCF 2.2 / 2.3): model, encoder, decoder and policy checks.

Format: "IAB Tech Lab - Consent string and vendor list formats v2" (GDPR-Transparency-and-Consent-
Framework, folder TCFv2). A TC string is base64url segments joined by ".": the core segment
first, then optional segments that start with a 3-bit SegmentType (1 = disclosed vendors,
2 = allowed vendors, 3 = publisher TC).

Decoding is bounded: the vendor ids one string expands to (bitfields and ranges together, each
id counted once per set) are capped at ``MAX_DECODED_IDS``, so a short string cannot make the
decoder build millions of ids.

Ids are 1-based everywhere: purpose n is bit n-1 of its bitfield, vendor n likewise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from itertools import chain
from typing import Literal

from ._bits import (
    BitReader,
    BitWriter,
    IdBudget,
    consecutive_runs,
    decode_base64url,
    merged_runs,
)
from ._errors import TCStringError

__all__ = [
    "PolicyIssue",
    "PublisherRestriction",
    "PublisherTC",
    "RestrictionType",
    "TCString",
    "TCStringError",
    "decode_tc_string",
    "encode_tc_string",
    "validate_tc_string",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_VENDOR_ID = 0xFFFF
# Vendor ids one TC string may decode to, over all its sets: the Global Vendor List has fewer
# than 5,000 ids, so real strings stay far below; about 6 MB of Python ints and sets at most.
MAX_DECODED_IDS = 100_000
# The reference encoder (iabtcf-es) pads every segment to a multiple of 24 bits, so the base64url
# text never needs "=" and its length is a multiple of 4.
_SEGMENT_ALIGNMENT = 24

SEGMENT_DISCLOSED_VENDORS = 1
SEGMENT_ALLOWED_VENDORS = 2
SEGMENT_PUBLISHER_TC = 3


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
        for name in (
            "special_feature_optins",
            "purposes_consent",
            "purposes_li_transparency",
            "vendor_consents",
            "vendor_legitimate_interests",
        ):
            object.__setattr__(self, name, _ids(getattr(self, name)))
        for name in ("disclosed_vendors", "allowed_vendors"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _ids(getattr(self, name)))
        object.__setattr__(self, "publisher_restrictions", tuple(self.publisher_restrictions))
        object.__setattr__(self, "consent_language", self.consent_language.upper())
        object.__setattr__(self, "publisher_cc", self.publisher_cc.upper())


# ----------------------------------------------------------------------------------- encoding


def _to_deciseconds(moment: datetime, name: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name}: datetime must be timezone-aware (UTC), got naive {moment}")
    delta = moment - _EPOCH
    microseconds = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (microseconds + 50_000) // 100_000  # round to the nearest decisecond


def _from_deciseconds(deciseconds: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=100 * deciseconds)


def _check_vendor_ids(ids: Iterable[int], name: str) -> None:
    for vendor in ids:
        if not 1 <= vendor <= _MAX_VENDOR_ID:
            raise ValueError(f"{name}: vendor id {vendor} is outside 1..{_MAX_VENDOR_ID}")


def _range_bits(runs: list[tuple[int, int]]) -> int:
    return 12 + sum(17 if first == last else 33 for first, last in runs)


def _write_ranges(writer: BitWriter, runs: list[tuple[int, int]], name: str) -> None:
    writer.write_int(len(runs), 12, f"{name}.NumEntries")
    for first, last in runs:
        writer.write_bool(first != last)
        writer.write_int(first, 16, f"{name}.StartOrOnlyVendorId")
        if first != last:
            writer.write_int(last, 16, f"{name}.EndVendorId")


def _write_vendor_section(writer: BitWriter, vendors: frozenset[int], name: str) -> None:
    """MaxVendorId, IsRangeEncoding, then ranges or a bitfield: whichever is shorter."""
    _check_vendor_ids(vendors, name)
    max_vendor_id = max(vendors, default=0)
    writer.write_int(max_vendor_id, 16, f"{name}.MaxVendorId")
    runs = consecutive_runs(vendors)
    use_ranges = _range_bits(runs) < max_vendor_id
    writer.write_bool(use_ranges)
    if use_ranges:
        _write_ranges(writer, runs, name)
    else:
        writer.write_bitfield(vendors, max_vendor_id, f"{name}.BitField")


def _finish_segment(writer: BitWriter) -> str:
    writer.pad_to(_SEGMENT_ALIGNMENT)
    return writer.to_base64url()


def _encode_core(tc: TCString) -> str:
    w = BitWriter()
    w.write_int(tc.version, 6, "Version")
    w.write_int(_to_deciseconds(tc.created, "Created"), 36, "Created")
    w.write_int(_to_deciseconds(tc.last_updated, "LastUpdated"), 36, "LastUpdated")
    w.write_int(tc.cmp_id, 12, "CmpId")
    w.write_int(tc.cmp_version, 12, "CmpVersion")
    w.write_int(tc.consent_screen, 6, "ConsentScreen")
    w.write_letters(tc.consent_language, 2, "ConsentLanguage")
    w.write_int(tc.vendor_list_version, 12, "VendorListVersion")
    w.write_int(tc.tcf_policy_version, 6, "TcfPolicyVersion")
    w.write_bool(tc.is_service_specific)
    w.write_bool(tc.use_non_standard_texts)
    w.write_bitfield(tc.special_feature_optins, 12, "SpecialFeatureOptIns")
    w.write_bitfield(tc.purposes_consent, 24, "PurposesConsent")
    w.write_bitfield(tc.purposes_li_transparency, 24, "PurposesLITransparency")
    w.write_bool(tc.purpose_one_treatment)
    w.write_letters(tc.publisher_cc, 2, "PublisherCC")
    _write_vendor_section(w, tc.vendor_consents, "VendorConsents")
    _write_vendor_section(w, tc.vendor_legitimate_interests, "VendorLegitimateInterests")
    w.write_int(len(tc.publisher_restrictions), 12, "NumPubRestrictions")
    for restriction in tc.publisher_restrictions:
        w.write_int(restriction.purpose_id, 6, "PubRestrictions.PurposeId")
        w.write_int(restriction.restriction_type, 2, "PubRestrictions.RestrictionType")
        _check_vendor_ids(restriction.vendors, "PubRestrictions")
        _write_ranges(w, consecutive_runs(restriction.vendors), "PubRestrictions")
    return _finish_segment(w)


def _encode_vendors_segment(segment_type: int, vendors: frozenset[int], name: str) -> str:
    w = BitWriter()
    w.write_int(segment_type, 3, "SegmentType")
    _write_vendor_section(w, vendors, name)
    return _finish_segment(w)


def _encode_publisher_tc(pub: PublisherTC) -> str:
    w = BitWriter()
    w.write_int(SEGMENT_PUBLISHER_TC, 3, "SegmentType")
    w.write_bitfield(pub.purposes_consent, 24, "PubPurposesConsent")
    w.write_bitfield(pub.purposes_li_transparency, 24, "PubPurposesLITransparency")
    w.write_int(pub.num_custom_purposes, 6, "NumCustomPurposes")
    n = pub.num_custom_purposes
    w.write_bitfield(pub.custom_purposes_consent, n, "CustomPurposesConsent")
    w.write_bitfield(pub.custom_purposes_li_transparency, n, "CustomPurposesLITransparency")
    return _finish_segment(w)


def encode_tc_string(tc: TCString) -> str:
    """Encode ``tc`` as a TC string: core segment, then disclosed vendors and publisher TC
    segments when present. Raises TCStringError naming the field that cannot be encoded."""
    if tc.version != 2:
        raise TCStringError(f"cannot encode TC string: Version must be 2, got {tc.version}")
    try:
        segments = [_encode_core(tc)]
        if tc.disclosed_vendors is not None:
            segments.append(
                _encode_vendors_segment(
                    SEGMENT_DISCLOSED_VENDORS, tc.disclosed_vendors, "DisclosedVendors"
                )
            )
        if tc.allowed_vendors is not None:
            segments.append(
                _encode_vendors_segment(
                    SEGMENT_ALLOWED_VENDORS, tc.allowed_vendors, "AllowedVendors"
                )
            )
        if tc.publisher_tc is not None:
            segments.append(_encode_publisher_tc(tc.publisher_tc))
    except ValueError as exc:
        raise TCStringError(f"cannot encode TC string: {exc}") from exc
    return ".".join(segments)


# ----------------------------------------------------------------------------------- decoding


def _read_ranges(reader: BitReader, name: str, budget: IdBudget) -> frozenset[int]:
    runs: list[tuple[int, int]] = []
    for _ in range(reader.read_int(12, f"{name}.NumEntries")):
        is_range = reader.read_bool(f"{name}.IsARange")
        first = reader.read_int(16, f"{name}.StartOrOnlyVendorId")
        last = reader.read_int(16, f"{name}.EndVendorId") if is_range else first
        if first == 0 or last < first:
            raise reader.fail(f"{name}: invalid vendor range {first}..{last}")
        runs.append((first, last))
    # Overlapping entries are tolerated; each id is counted and built once.
    runs = merged_runs(runs)
    budget.spend(sum(last - first + 1 for first, last in runs), reader)
    return frozenset(chain.from_iterable(range(first, last + 1) for first, last in runs))


def _read_vendor_section(reader: BitReader, name: str, budget: IdBudget) -> frozenset[int]:
    max_vendor_id = reader.read_int(16, f"{name}.MaxVendorId")
    if reader.read_bool(f"{name}.IsRangeEncoding"):
        return _read_ranges(reader, name, budget)
    return reader.read_bitfield(max_vendor_id, f"{name}.BitField", budget)


def _segment_reader(segment: str, what: str) -> BitReader:
    bits = decode_base64url(segment, error=TCStringError, what=what)
    return BitReader(bits, error=TCStringError, context=what)


def _decode_core(segment: str, budget: IdBudget) -> TCString:
    r = _segment_reader(segment, "core segment")
    version = r.read_int(6, "Version")
    if version != 2:
        hint = " (TCF v1 consent strings are not supported)" if version == 1 else ""
        raise TCStringError(f"unsupported TC string version {version}: expected 2{hint}")
    # Keyword arguments are evaluated left to right, i.e. in the order the bits are laid out.
    return TCString(
        version=version,
        created=_from_deciseconds(r.read_int(36, "Created")),
        last_updated=_from_deciseconds(r.read_int(36, "LastUpdated")),
        cmp_id=r.read_int(12, "CmpId"),
        cmp_version=r.read_int(12, "CmpVersion"),
        consent_screen=r.read_int(6, "ConsentScreen"),
        consent_language=r.read_letters(2, "ConsentLanguage"),
        vendor_list_version=r.read_int(12, "VendorListVersion"),
        tcf_policy_version=r.read_int(6, "TcfPolicyVersion"),
        is_service_specific=r.read_bool("IsServiceSpecific"),
        use_non_standard_texts=r.read_bool("UseNonStandardTexts"),
        special_feature_optins=r.read_bitfield(12, "SpecialFeatureOptIns"),
        purposes_consent=r.read_bitfield(24, "PurposesConsent"),
        purposes_li_transparency=r.read_bitfield(24, "PurposesLITransparency"),
        purpose_one_treatment=r.read_bool("PurposeOneTreatment"),
        publisher_cc=r.read_letters(2, "PublisherCC"),
        vendor_consents=_read_vendor_section(r, "VendorConsents", budget),
        vendor_legitimate_interests=_read_vendor_section(r, "VendorLegitimateInterests", budget),
        publisher_restrictions=_read_publisher_restrictions(r, budget),
    )


def _read_publisher_restrictions(
    reader: BitReader, budget: IdBudget
) -> tuple[PublisherRestriction, ...]:
    restrictions = []
    for _ in range(reader.read_int(12, "NumPubRestrictions")):
        purpose_id = reader.read_int(6, "PubRestrictions.PurposeId")
        restriction_type = RestrictionType(reader.read_int(2, "PubRestrictions.RestrictionType"))
        vendors = _read_ranges(reader, "PubRestrictions", budget)
        restrictions.append(PublisherRestriction(purpose_id, restriction_type, vendors))
    return tuple(restrictions)


def _decode_publisher_tc(reader: BitReader) -> PublisherTC:
    consent = reader.read_bitfield(24, "PubPurposesConsent")
    li_transparency = reader.read_bitfield(24, "PubPurposesLITransparency")
    count = reader.read_int(6, "NumCustomPurposes")
    return PublisherTC(
        purposes_consent=consent,
        purposes_li_transparency=li_transparency,
        custom_purposes_consent=reader.read_bitfield(count, "CustomPurposesConsent"),
        custom_purposes_li_transparency=reader.read_bitfield(count, "CustomPurposesLITransparency"),
        num_custom_purposes=count,
    )


def decode_tc_string(text: str) -> TCString:
    """Decode a TC string. Raises TCStringError with a message naming the segment and field
    that is malformed or ran out of bits, or expands to more than ``MAX_DECODED_IDS`` vendor
    ids. Trailing '=' padding on segments is tolerated."""
    if not isinstance(text, str):
        raise TCStringError(f"TC string must be a str, got {type(text).__name__}")
    core_segment, *other_segments = text.split(".")
    budget = IdBudget(MAX_DECODED_IDS, "TC string")
    core = _decode_core(core_segment, budget)
    disclosed: frozenset[int] | None = None
    allowed: frozenset[int] | None = None
    publisher_tc: PublisherTC | None = None
    for index, segment in enumerate(other_segments, start=2):
        what = f"segment {index}"
        reader = _segment_reader(segment, what)
        segment_type = reader.read_int(3, "SegmentType")
        if segment_type == SEGMENT_DISCLOSED_VENDORS:
            if disclosed is not None:
                raise TCStringError(f"{what}: duplicate disclosed vendors segment")
            disclosed = _read_vendor_section(reader, "DisclosedVendors", budget)
        elif segment_type == SEGMENT_PUBLISHER_TC:
            if publisher_tc is not None:
                raise TCStringError(f"{what}: duplicate publisher TC segment")
            publisher_tc = _decode_publisher_tc(reader)
        elif segment_type == SEGMENT_ALLOWED_VENDORS:
            if allowed is not None:
                raise TCStringError(f"{what}: duplicate allowed vendors segment")
            allowed = _read_vendor_section(reader, "AllowedVendors", budget)
        else:
            raise TCStringError(f"{what}: unknown segment type {segment_type}")
    return replace(
        core, disclosed_vendors=disclosed, publisher_tc=publisher_tc, allowed_vendors=allowed
    )


# ------------------------------------------------------------------------------ policy checks

Severity = Literal["error", "warning"]
# TCF 2.3: strings created after 28 February 2026 must carry the disclosed vendors segment.
TCF_2_3_DEADLINE = datetime(2026, 3, 1, tzinfo=UTC)
_LI_FORBIDDEN_PURPOSES = frozenset({3, 4, 5, 6})


@dataclass(frozen=True)
class PolicyIssue:
    severity: Severity
    code: str
    message: str


def _range_issues(ids: frozenset[int], low: int, high: int, name: str) -> list[PolicyIssue]:
    bad = sorted(i for i in ids if not low <= i <= high)
    if not bad:
        return []
    return [PolicyIssue("error", "id_out_of_range", f"{name}: ids {bad} are outside {low}..{high}")]


def validate_tc_string(tc: TCString, *, now: datetime | None = None) -> list[PolicyIssue]:
    """Check ``tc`` against TCF 2.2 / 2.3 policy rules that can be judged from the string alone.

    Returns an empty list when nothing is wrong. ``now`` (timezone-aware) enables the check that
    timestamps are not in the future; the function itself never reads the clock.
    """
    issues: list[PolicyIssue] = []

    def error(code: str, message: str) -> None:
        issues.append(PolicyIssue("error", code, message))

    def warning(code: str, message: str) -> None:
        issues.append(PolicyIssue("warning", code, message))

    if tc.version != 2:
        error("unsupported_version", f"Version must be 2, got {tc.version}")
    if not tc.is_service_specific:
        error("not_service_specific", "IsServiceSpecific must be 1: global TC strings are invalid")
    if tc.cmp_id < 2:
        error("invalid_cmp_id", f"CmpId {tc.cmp_id} is not a valid registered CMP id")
    if tc.vendor_list_version < 1:
        error("missing_vendor_list_version", "VendorListVersion must be set (>= 1)")
    if tc.tcf_policy_version < 4:
        error(
            "outdated_policy_version",
            f"TcfPolicyVersion {tc.tcf_policy_version} < 4: such strings are invalid since "
            "30 September 2023 (TCF 2.2)",
        )
    for name, value in (("ConsentLanguage", tc.consent_language), ("PublisherCC", tc.publisher_cc)):
        if len(value) != 2 or not all("A" <= char <= "Z" for char in value):
            error("invalid_letters", f"{name} must be two letters A-Z, got {value!r}")

    aware = tc.created.tzinfo is not None and tc.last_updated.tzinfo is not None
    if not aware:
        error("naive_timestamp", "Created and LastUpdated must be timezone-aware (UTC)")
    else:
        if tc.created > tc.last_updated:
            error("created_after_last_updated", "Created is later than LastUpdated")
        if now is not None and tc.last_updated > now:
            error("timestamp_in_future", f"LastUpdated {tc.last_updated} is in the future")
        for name, moment in (("Created", tc.created), ("LastUpdated", tc.last_updated)):
            if moment.astimezone(UTC).time() != datetime.min.time():
                warning("timestamp_not_day_rounded", f"{name} should be rounded to the UTC day")
        if tc.created != tc.last_updated:
            warning(
                "created_differs_from_last_updated",
                "CMPs are expected to set Created to the same value as LastUpdated",
            )

    issues += _range_issues(tc.special_feature_optins, 1, 12, "SpecialFeatureOptIns")
    issues += _range_issues(tc.purposes_consent, 1, 24, "PurposesConsent")
    issues += _range_issues(tc.purposes_li_transparency, 1, 24, "PurposesLITransparency")
    for name, vendors in (
        ("VendorConsents", tc.vendor_consents),
        ("VendorLegitimateInterests", tc.vendor_legitimate_interests),
        ("DisclosedVendors", tc.disclosed_vendors or frozenset()),
    ):
        issues += _range_issues(vendors, 1, _MAX_VENDOR_ID, name)

    if tc.tcf_policy_version >= 4:
        forbidden = sorted(tc.purposes_li_transparency & _LI_FORBIDDEN_PURPOSES)
        if forbidden:
            error(
                "li_not_allowed_for_purposes_3_to_6",
                f"TCF 2.2 forbids legitimate interest for purposes 3-6; set for {forbidden}",
            )
        if tc.publisher_tc is not None:
            pub_forbidden = sorted(
                tc.publisher_tc.purposes_li_transparency & _LI_FORBIDDEN_PURPOSES
            )
            if pub_forbidden:
                error(
                    "publisher_li_not_allowed_for_purposes_3_to_6",
                    f"TCF 2.2 forbids legitimate interest for purposes 3-6; publisher segment "
                    f"sets it for {pub_forbidden}",
                )
    if 1 in tc.purposes_li_transparency:
        warning("li_for_purpose_1", "Purpose 1 cannot be based on legitimate interest")

    for restriction in tc.publisher_restrictions:
        purpose, kind = restriction.purpose_id, restriction.restriction_type
        if not 1 <= purpose <= 24:
            error("restriction_purpose_out_of_range", f"restriction for unknown purpose {purpose}")
        if kind == RestrictionType.UNDEFINED:
            warning(
                "restriction_type_undefined", f"purpose {purpose}: restriction type 3 is unused"
            )
        if kind == RestrictionType.REQUIRE_LEGITIMATE_INTEREST and (
            purpose == 1 or (tc.tcf_policy_version >= 4 and purpose in _LI_FORBIDDEN_PURPOSES)
        ):
            error(
                "restriction_requires_forbidden_li",
                f"purpose {purpose} cannot be restricted to legitimate interest",
            )

    if tc.disclosed_vendors is None:
        if tc.tcf_policy_version >= 5:
            error(
                "disclosed_vendors_missing",
                "the disclosed vendors segment is mandatory for TcfPolicyVersion 5 (TCF 2.3)",
            )
        elif aware and tc.created >= TCF_2_3_DEADLINE:
            error(
                "disclosed_vendors_missing",
                "the disclosed vendors segment is mandatory for strings created after "
                "28 February 2026 (TCF 2.3)",
            )
    else:
        undisclosed = sorted(
            (tc.vendor_consents | tc.vendor_legitimate_interests) - tc.disclosed_vendors
        )
        if undisclosed:
            warning(
                "vendors_not_disclosed",
                f"vendors {undisclosed[:20]} have consent or legitimate interest signals but are "
                "not in the disclosed vendors segment",
            )
    return issues
