"""TC string encoder/decoder behaviour: round trips, vendor-section encoding choice, padding,
timestamps and error messages."""

from __future__ import annotations

import string
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.standards import (
    PublisherRestriction,
    PublisherTC,
    RestrictionType,
    TCString,
    TCStringError,
    decode_tc_string,
    encode_tc_string,
)
from consentry.standards._bits import BitWriter, decode_base64url, encode_base64url

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = datetime(2025, 11, 20, tzinfo=UTC)
# Bit offsets inside the core segment (spec field widths summed).
CORE_FIXED_BITS = 213  # Version … PublisherCC
VENDOR_CONSENT_RANGE_FLAG_BIT = CORE_FIXED_BITS + 16


def make_tc(**changes: object) -> TCString:
    base = TCString(
        created=DAY,
        last_updated=DAY,
        cmp_id=300,
        cmp_version=4,
        consent_screen=1,
        consent_language="FR",
        vendor_list_version=120,
        tcf_policy_version=5,
        publisher_cc="DE",
        purposes_consent=frozenset({1, 2, 7}),
        purposes_li_transparency=frozenset({2, 7}),
        vendor_consents=frozenset({8, 12, 755}),
        vendor_legitimate_interests=frozenset({12}),
        disclosed_vendors=frozenset({8, 12, 755, 800}),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def core_bits(tc_string: str) -> str:
    return decode_base64url(tc_string.split(".")[0])


# ------------------------------------------------------------------------ hypothesis strategies


def id_sets(max_id: int, max_size: int) -> st.SearchStrategy[frozenset[int]]:
    return st.frozensets(st.integers(1, max_id), max_size=max_size)


deciseconds = st.integers(0, 2**36 - 1)
timestamps = deciseconds.map(lambda ds: EPOCH + timedelta(milliseconds=100 * ds))
letter_pairs = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2)
vendor_sets = st.one_of(
    id_sets(700, 40),  # sparse: usually bitfield
    id_sets(65535, 4),  # few high ids: range
    st.builds(
        lambda start, n: frozenset(range(start, start + n)),
        st.integers(1, 3000),
        st.integers(0, 400),
    ),
)
restrictions = st.builds(
    PublisherRestriction,
    purpose_id=st.integers(0, 63),
    restriction_type=st.sampled_from(RestrictionType),
    vendors=vendor_sets,
)
publisher_tcs = st.builds(
    PublisherTC,
    purposes_consent=id_sets(24, 24),
    purposes_li_transparency=id_sets(24, 24),
    custom_purposes_consent=id_sets(63, 10),
    custom_purposes_li_transparency=id_sets(63, 10),
    num_custom_purposes=st.integers(0, 63),
)
tc_strings = st.builds(
    TCString,
    created=timestamps,
    last_updated=timestamps,
    cmp_id=st.integers(0, 4095),
    cmp_version=st.integers(0, 4095),
    consent_screen=st.integers(0, 63),
    consent_language=letter_pairs,
    vendor_list_version=st.integers(0, 4095),
    tcf_policy_version=st.integers(0, 63),
    is_service_specific=st.booleans(),
    use_non_standard_texts=st.booleans(),
    special_feature_optins=id_sets(12, 12),
    purposes_consent=id_sets(24, 24),
    purposes_li_transparency=id_sets(24, 24),
    purpose_one_treatment=st.booleans(),
    publisher_cc=letter_pairs,
    vendor_consents=vendor_sets,
    vendor_legitimate_interests=vendor_sets,
    publisher_restrictions=st.lists(restrictions, max_size=3).map(tuple),
    disclosed_vendors=st.none() | vendor_sets,
    publisher_tc=st.none() | publisher_tcs,
)


@given(tc_strings)
def test_decode_of_encode_returns_an_equal_tc_string(tc: TCString) -> None:
    assert decode_tc_string(encode_tc_string(tc)) == tc


@given(tc_strings)
def test_encoding_is_canonical_and_segments_are_24_bit_aligned(tc: TCString) -> None:
    encoded = encode_tc_string(tc)
    assert encode_tc_string(decode_tc_string(encoded)) == encoded
    assert "=" not in encoded
    assert all(len(segment) % 4 == 0 for segment in encoded.split("."))
    assert encoded.count(".") == (tc.disclosed_vendors is not None) + (tc.publisher_tc is not None)


# ----------------------------------------------------------------- vendor section encoding choice


def test_sparse_high_vendor_ids_use_range_encoding_and_are_much_shorter() -> None:
    encoded = encode_tc_string(
        make_tc(vendor_consents=frozenset({1, 1000}), disclosed_vendors=None)
    )
    assert core_bits(encoded)[VENDOR_CONSENT_RANGE_FLAG_BIT] == "1"
    # 213 fixed + consents as ranges (16 + 1 + 12 + 2 x 17) + LI {12} as bitfield (16 + 1 + 12)
    # + NumPubRestrictions 12 = 317 bits, padded to 336 bits = 56 characters
    assert len(encoded) == 56
    # a bitfield would need 213 + (17 + 1000) + 29 + 12 = 1271 bits -> 1272 bits = 212 characters
    assert len(encoded) < 212 / 3
    assert decode_tc_string(encoded).vendor_consents == {1, 1000}


def test_dense_vendor_ids_use_a_bitfield() -> None:
    encoded = encode_tc_string(make_tc(vendor_consents=frozenset({1, 3, 5, 7, 9})))
    bits = core_bits(encoded)
    assert bits[CORE_FIXED_BITS : CORE_FIXED_BITS + 16] == format(9, "016b")  # MaxVendorId
    assert bits[VENDOR_CONSENT_RANGE_FLAG_BIT] == "0"
    assert (
        bits[VENDOR_CONSENT_RANGE_FLAG_BIT + 1 : VENDOR_CONSENT_RANGE_FLAG_BIT + 10] == "101010101"
    )


def test_range_encoding_merges_consecutive_vendor_ids_into_one_entry() -> None:
    encoded = encode_tc_string(make_tc(vendor_consents=frozenset({5, 6, 7, 8, 2000})))
    bits = core_bits(encoded)
    start = VENDOR_CONSENT_RANGE_FLAG_BIT
    assert bits[start] == "1"
    assert int(bits[start + 1 : start + 13], 2) == 2  # NumEntries
    assert bits[start + 13] == "1"  # first entry is a range 5..8
    assert int(bits[start + 14 : start + 30], 2) == 5
    assert int(bits[start + 30 : start + 46], 2) == 8


def test_empty_vendor_section_is_max_vendor_id_zero_bitfield() -> None:
    bits = core_bits(encode_tc_string(make_tc(vendor_consents=frozenset())))
    assert bits[CORE_FIXED_BITS : CORE_FIXED_BITS + 17] == "0" * 17


# --------------------------------------------------------------------------- decoding tolerance


def test_decoding_tolerates_equals_padding_on_every_segment() -> None:
    tc = make_tc(publisher_tc=PublisherTC(purposes_consent=frozenset({1})))
    padded = ".".join(segment + "==" for segment in encode_tc_string(tc).split("."))
    assert decode_tc_string(padded) == tc


def test_decoding_tolerates_a_vendor_listed_twice_in_one_restriction() -> None:
    no_vendors = make_tc(vendor_consents=frozenset(), vendor_legitimate_interests=frozenset())
    bits = core_bits(encode_tc_string(no_vendors))[: CORE_FIXED_BITS + 2 * 17]
    writer = BitWriter()
    writer.write_int(1, 12, "NumPubRestrictions")
    writer.write_int(2, 6, "PurposeId")
    writer.write_int(0, 2, "RestrictionType")
    writer.write_int(2, 12, "NumEntries")
    for is_range, first, last in ((True, 5, 7), (False, 6, 6)):
        writer.write_bool(is_range)
        writer.write_int(first, 16, "Start")
        if is_range:
            writer.write_int(last, 16, "End")
    tc = decode_tc_string(encode_base64url(bits + writer.bits))
    assert tc.publisher_restrictions == (
        PublisherRestriction(2, RestrictionType.NOT_ALLOWED, frozenset({5, 6, 7})),
    )


def test_decoding_reads_the_allowed_vendors_segment() -> None:
    tc = make_tc()
    writer = BitWriter()
    writer.write_int(2, 3, "SegmentType")
    writer.write_int(3, 16, "MaxVendorId")
    writer.write_bool(False)
    writer.write_bitfield({1, 3}, 3, "BitField")
    with_allowed = encode_tc_string(tc) + "." + writer.to_base64url()
    assert decode_tc_string(with_allowed) == replace(tc, allowed_vendors=frozenset({1, 3}))


def test_segments_after_the_core_may_come_in_any_order() -> None:
    tc = make_tc(publisher_tc=PublisherTC(custom_purposes_consent=frozenset({2})))
    core, disclosed, publisher = encode_tc_string(tc).split(".")
    assert decode_tc_string(f"{core}.{publisher}.{disclosed}") == tc


# ------------------------------------------------------------------------------- model details


def test_timestamps_are_stored_in_deciseconds_rounded_to_nearest() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 160_000, tzinfo=UTC)
    tc = decode_tc_string(encode_tc_string(make_tc(created=moment, last_updated=moment)))
    assert tc.created == datetime(2024, 5, 1, 12, 0, 0, 200_000, tzinfo=UTC)
    assert tc.created.tzinfo is UTC


def test_non_utc_aware_timestamps_are_converted_to_the_same_instant() -> None:
    cet = datetime(2024, 5, 1, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    decoded = decode_tc_string(encode_tc_string(make_tc(created=cet, last_updated=cet)))
    assert decoded.created == datetime(2024, 5, 1, 14, 0, tzinfo=UTC)


def test_language_and_country_codes_are_upper_cased() -> None:
    tc = make_tc(consent_language="de", publisher_cc="fr")
    assert (tc.consent_language, tc.publisher_cc) == ("DE", "FR")


def test_sets_given_as_plain_sets_are_stored_as_frozensets_and_stay_hashable() -> None:
    # deliberately untyped input: the model coerces it at runtime
    restriction = PublisherRestriction(1, 0, {9})  # type: ignore[arg-type]
    tc = make_tc(vendor_consents={3, 4}, publisher_restrictions=[restriction])
    assert isinstance(tc.vendor_consents, frozenset)
    assert tc.publisher_restrictions[0].restriction_type is RestrictionType.NOT_ALLOWED
    assert isinstance(hash(tc), int)


def test_publisher_tc_custom_purpose_count_covers_the_highest_custom_purpose() -> None:
    pub = PublisherTC(custom_purposes_li_transparency=frozenset({5}))
    assert pub.num_custom_purposes == 5
    assert PublisherTC(num_custom_purposes=9).num_custom_purposes == 9


# ------------------------------------------------------------------------------------ errors


def test_truncated_string_names_the_field_that_ran_out() -> None:
    encoded = encode_tc_string(make_tc())
    with pytest.raises(TCStringError, match=r"core segment: string ended while reading CmpId"):
        decode_tc_string(encoded[:14])
    with pytest.raises(TCStringError, match=r"VendorConsents"):
        decode_tc_string(encoded[:38])


def test_invalid_base64_characters_are_reported_with_their_position() -> None:
    encoded = encode_tc_string(make_tc())
    with pytest.raises(TCStringError, match=r"invalid character '\+' at position 3"):
        decode_tc_string(encoded[:3] + "+" + encoded[4:])


@pytest.mark.parametrize(("first_char", "version"), [("A", 0), ("D", 3), ("E", 4)])
def test_wrong_version_is_rejected(first_char: str, version: int) -> None:
    encoded = encode_tc_string(make_tc())
    with pytest.raises(TCStringError, match=f"unsupported TC string version {version}"):
        decode_tc_string(first_char + encoded[1:])


def test_empty_string_and_empty_segment_are_rejected() -> None:
    with pytest.raises(TCStringError, match="core segment is empty"):
        decode_tc_string("")
    with pytest.raises(TCStringError, match="segment 2 is empty"):
        decode_tc_string(encode_tc_string(make_tc(disclosed_vendors=None)) + ".")


def test_non_string_input_is_rejected_with_tc_string_error() -> None:
    with pytest.raises(TCStringError, match="must be a str"):
        decode_tc_string(b"COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA")  # type: ignore[arg-type]


def test_unknown_and_duplicate_segments_are_rejected() -> None:
    core, disclosed = encode_tc_string(make_tc()).split(".")
    with pytest.raises(TCStringError, match="segment 2: unknown segment type 0"):
        decode_tc_string(core + ".AAAA")
    with pytest.raises(TCStringError, match="segment 3: duplicate disclosed vendors segment"):
        decode_tc_string(f"{core}.{disclosed}.{disclosed}")


def test_range_whose_end_precedes_its_start_is_rejected() -> None:
    writer = BitWriter()
    writer.write_int(1, 3, "SegmentType")
    writer.write_int(9, 16, "MaxVendorId")
    writer.write_bool(True)
    writer.write_int(1, 12, "NumEntries")
    writer.write_bool(True)
    writer.write_int(9, 16, "Start")
    writer.write_int(4, 16, "End")
    core = encode_tc_string(make_tc(disclosed_vendors=None))
    with pytest.raises(TCStringError, match="DisclosedVendors: invalid vendor range 9..4"):
        decode_tc_string(core + "." + writer.to_base64url())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cmp_id": 4096}, "CmpId: 4096 does not fit in 12 bits"),
        ({"consent_language": "E"}, "ConsentLanguage"),
        ({"purposes_consent": frozenset({25})}, "PurposesConsent: id 25"),
        ({"vendor_consents": frozenset({0, 4})}, "VendorConsents: vendor id 0"),
        ({"disclosed_vendors": frozenset({70000})}, "DisclosedVendors: vendor id 70000"),
        ({"created": datetime(2024, 1, 1)}, "Created: datetime must be timezone-aware"),
        ({"version": 1}, "Version must be 2"),
        ({"publisher_tc": PublisherTC(custom_purposes_consent=frozenset({64}))}, "NumCustomPurp"),
    ],
)
def test_encoding_invalid_values_raises_tc_string_error_naming_the_field(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(TCStringError, match=message):
        encode_tc_string(make_tc(**changes))
