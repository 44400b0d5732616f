"""Interoperability with the reference implementations: the usnat layout chosen by length, the
allowed-vendors segment, GPP headers, and decodes bounded whatever the input.

Every string and expected value under "vectors" is taken from the named repository's test file;
the bound tests build hostile strings of their own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consentry.standards import (
    GPPError,
    TCString,
    TCStringError,
    decode_gpp,
    decode_tc_string,
    encode_tc_string,
)
from consentry.standards._bits import BitWriter, decode_base64url, encode_base64url
from consentry.standards.gpp import _decode_header
from consentry.standards.tcf_model import MAX_DECODED_IDS
from consentry.standards.usnat import UsNat, decode_usnat, encode_usnat

# -- vectors: usnat ---------------------------------------------------------------------------
# IABTechLab/iabgpp-java, iabgpp-encoder/src/test/java/com/iab/gpp/encoder/section/UsNatTest.java
JAVA_V1_NEW_LAYOUT_GPC = "BVVVkkkkkpFY.YA"
JAVA_V1_NEW_LAYOUT = "BVVVkkkkkpFY"
JAVA_V1_OLD_LAYOUT = "BVQqAAAACg"
# IABTechLab/iabgpp-es, modules/cmpapi/test/encoder/section/UsNat.test.ts
ES_V1_OLD_LAYOUT = "BAAAVVVVUQA.QA"
ES_V2_FROM_OLD_VALUES = "CAAAVVVVAFBA.QA"
ES_V2_NEW_LAYOUT = "CAAAVVVVVVRA.QA"


def test_a_version_1_usnat_core_of_16_3_length_is_read_in_the_16_3_layout() -> None:
    """iabgpp-java UsNatTest.java: Version 1 written with 16 sensitive-data entries; every
    field after the 12th entry (child consents, personal data, the MSPA modes) must be the
    sender's."""
    for text, gpc in ((JAVA_V1_NEW_LAYOUT_GPC, True), (JAVA_V1_NEW_LAYOUT, None)):
        usnat = decode_usnat(text)
        assert usnat.version == 1
        assert usnat.sharing_notice == usnat.sale_opt_out_notice == 1
        assert usnat.targeted_advertising_opt_out == 1
        assert usnat.sensitive_data_processing == (2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2)
        assert usnat.known_child_sensitive_data_consents == (2, 1, 0)
        assert usnat.personal_data_consents == 1
        assert usnat.mspa_covered_transaction == 1
        assert usnat.mspa_opt_out_option_mode == 1
        assert usnat.mspa_service_provider_mode == 2
        assert usnat.gpc is gpc


def test_a_version_1_usnat_in_the_16_3_layout_encodes_as_iabgpp_java_does() -> None:
    usnat = decode_usnat(JAVA_V1_NEW_LAYOUT_GPC)
    assert encode_usnat(usnat, byte_align=True) == JAVA_V1_NEW_LAYOUT_GPC


def test_a_60_bit_usnat_core_is_read_in_the_12_2_layout() -> None:
    """iabgpp-java UsNatTest.java "BVQqAAAACg" (the references pad it to 16/3 with zeros)."""
    usnat = decode_usnat(JAVA_V1_OLD_LAYOUT)
    assert (usnat.sale_opt_out, usnat.sharing_opt_out, usnat.targeted_advertising_opt_out) == (
        2,
        2,
        2,
    )
    assert set(usnat.sensitive_data_processing) == {0}
    assert usnat.layout == (12, 2)
    assert usnat.personal_data_consents == 2
    assert usnat.mspa_covered_transaction == 2
    assert (usnat.mspa_opt_out_option_mode, usnat.mspa_service_provider_mode) == (0, 0)


@pytest.mark.parametrize(
    ("text", "version", "sdp", "child"),
    [
        (ES_V1_OLD_LAYOUT, 1, (1,) * 12, (1, 1)),
        (ES_V2_FROM_OLD_VALUES, 2, (1,) * 12 + (0,) * 4, (1, 1, 0)),
        (ES_V2_NEW_LAYOUT, 2, (1,) * 16, (1, 1, 1)),
    ],
)
def test_iabgpp_es_usnat_vectors_decode_and_encode_back(
    text: str, version: int, sdp: tuple[int, ...], child: tuple[int, ...]
) -> None:
    usnat = decode_usnat(text)
    assert (usnat.version, usnat.sensitive_data_processing) == (version, sdp)
    assert usnat.known_child_sensitive_data_consents == child
    assert usnat.gpc is False
    assert encode_usnat(usnat, byte_align=True) == text


def test_a_usnat_with_a_mixed_layout_is_refused() -> None:
    with pytest.raises(GPPError, match="12 and 2 or 16 and 3"):
        UsNat(mspa_covered_transaction=1, sensitive_data_processing=(0,) * 12,
              known_child_sensitive_data_consents=(0,) * 3)  # fmt: skip


# -- vectors: allowed vendors -----------------------------------------------------------------
# InteractiveAdvertisingBureau/iabtcf-java,
# iabtcf-decoder/src/test/java/com/iabtcf/decoder/TCStringV2Test.java
# (testCanParseDisclosedAndAllowedVendors)
JAVA_WITH_ALLOWED = (
    "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"
    ".IBAgAAAgAIAwgAgAAAAEAAAACA.QAagAQAgAIAwgA"
)


def test_the_allowed_vendors_segment_is_decoded() -> None:
    tc = decode_tc_string(JAVA_WITH_ALLOWED)
    assert tc.allowed_vendors == frozenset({12, 23, 37, 47, 48, 53})
    assert tc.disclosed_vendors == frozenset({23, 37, 47, 48, 53, 65, 98, 129})


def test_the_allowed_vendors_segment_survives_a_round_trip() -> None:
    tc = decode_tc_string(JAVA_WITH_ALLOWED)
    again = decode_tc_string(encode_tc_string(tc))
    assert again == tc
    assert decode_tc_string(encode_tc_string(tc).split(".")[0]).allowed_vendors is None


# -- vectors: GPP header ------------------------------------------------------------------------
# IABTechLab/iabgpp-java, iabgpp-encoder/src/test/java/com/iab/gpp/encoder/section/HeaderV1Test.java
@pytest.mark.parametrize(("header", "ids"), [("DBAA", []), ("DBABMA", [2]), ("DBACNYA", [2, 6])])
def test_iabgpp_java_header_vectors_still_decode(header: str, ids: list[int]) -> None:
    assert _decode_header(header, len(ids)) == ids


# -- bounds ----------------------------------------------------------------------------------
def _group_header(length: int, first: int = 1) -> str:
    """A GPP header of one Fibonacci group: section ids first .. first + length."""
    w = BitWriter()
    w.write_int(3, 6, "Type")
    w.write_int(1, 6, "Version")
    w.write_int(1, 12, "NumEntries")
    w.write_bool(True)
    w.write_fibonacci(first, "Offset")
    w.write_fibonacci(length, "Length")
    return w.to_base64url()


def test_a_short_gpp_header_cannot_expand_past_the_sections_the_string_carries() -> None:
    header = _group_header(1_350_000)
    assert len(header) <= 10
    with pytest.raises(
        GPPError, match=r"lists 1350001 section\(s\) \[1, .* 1349981 more\] but the string has 1 "
    ) as caught:
        decode_gpp(header + "~AAAA")
    assert len(str(caught.value)) < 300  # the ids are summarised, never printed in full


def test_a_gpp_string_with_more_sections_than_exist_is_refused() -> None:
    header = _group_header(4_000, first=13)  # ids 13..4013, then 4,001 sections
    with pytest.raises(GPPError, match="more than 100 sections"):
        decode_gpp(header + "~AA" * 4_001)
    assert len(decode_gpp(_group_header(99, first=13) + "~AA" * 100).sections) == 100


def _tc_core_without_vendors() -> str:
    tc = TCString(
        created=datetime(2025, 1, 1, tzinfo=UTC),
        last_updated=datetime(2025, 1, 1, tzinfo=UTC),
        cmp_id=300,
        vendor_list_version=120,
    )
    bits = decode_base64url(encode_tc_string(tc).split(".")[0])
    return bits[:213]  # Version … PublisherCC


def _ranges(runs: list[tuple[int, int]]) -> str:
    w = BitWriter()
    w.write_int(max(last for _, last in runs), 16, "MaxVendorId")
    w.write_bool(True)
    w.write_int(len(runs), 12, "NumEntries")
    for first, last in runs:
        w.write_bool(True)
        w.write_int(first, 16, "Start")
        w.write_int(last, 16, "End")
    return w.bits


def _tc(consents: list[tuple[int, int]], interests: list[tuple[int, int]]) -> str:
    return encode_base64url(
        _tc_core_without_vendors() + _ranges(consents) + _ranges(interests) + "0" * 12
    )


def test_overlapping_vendor_ranges_are_merged_before_they_are_counted() -> None:
    """1,000 overlapping ranges of 60,000 ids and 30,000 more: 90,000 distinct ids, within the
    bound only because each id is counted once."""
    text = _tc([(1, 60_000)] * 1_000, [(1, 30_000)])
    assert len(text) < 6_000
    tc = decode_tc_string(text)
    assert len(tc.vendor_consents) == 60_000
    assert len(tc.vendor_legitimate_interests) == 30_000


def test_a_tc_string_expanding_past_the_id_bound_is_refused() -> None:
    assert MAX_DECODED_IDS == 100_000
    text = _tc([(1, 65_535)], [(1, 65_535)])
    with pytest.raises(TCStringError, match="expands to more than 100000 ids"):
        decode_tc_string(text)


def test_publisher_restrictions_share_the_id_bound() -> None:
    core = _tc_core_without_vendors() + _ranges([(1, 10)]) + _ranges([(1, 10)])
    w = BitWriter()
    w.write_int(4, 12, "NumPubRestrictions")
    for purpose in range(1, 5):
        w.write_int(purpose, 6, "PurposeId")
        w.write_int(0, 2, "RestrictionType")
        w.write_int(1, 12, "NumEntries")
        w.write_bool(True)
        w.write_int(1, 16, "Start")
        w.write_int(40_000, 16, "End")
    with pytest.raises(TCStringError, match="expands to more than"):
        decode_tc_string(encode_base64url(core + w.bits))
