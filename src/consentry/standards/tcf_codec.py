"""IAB TCF v2 TC strings (TCF 2.2 / 2.3): the encoder and the decoder.

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
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import chain

from ._bits import (
    BitReader,
    BitWriter,
    IdBudget,
    consecutive_runs,
    decode_base64url,
    merged_runs,
)
from ._errors import TCStringError
from .tcf_model import (
    EPOCH,
    MAX_DECODED_IDS,
    MAX_VENDOR_ID,
    SEGMENT_ALIGNMENT,
    SEGMENT_ALLOWED_VENDORS,
    SEGMENT_DISCLOSED_VENDORS,
    SEGMENT_PUBLISHER_TC,
    PublisherRestriction,
    PublisherTC,
    RestrictionType,
    TCString,
)

# ----------------------------------------------------------------------------------- encoding


def _to_deciseconds(moment: datetime, name: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name}: datetime must be timezone-aware (UTC), got naive {moment}")
    delta = moment - EPOCH
    microseconds = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (microseconds + 50_000) // 100_000  # round to the nearest decisecond


def _from_deciseconds(deciseconds: int) -> datetime:
    return EPOCH + timedelta(milliseconds=100 * deciseconds)


def _check_vendor_ids(ids: Iterable[int], name: str) -> None:
    for vendor in ids:
        if not 1 <= vendor <= MAX_VENDOR_ID:
            raise ValueError(f"{name}: vendor id {vendor} is outside 1..{MAX_VENDOR_ID}")


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
    writer.pad_to(SEGMENT_ALIGNMENT)
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
