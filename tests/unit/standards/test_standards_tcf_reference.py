"""TC strings published by the reference implementations, checked against their published
decoded values. Each test names the repository and file the string and values come from."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from consentry.standards import (
    PublisherRestriction,
    RestrictionType,
    TCStringError,
    decode_tc_string,
    encode_tc_string,
)

# InteractiveAdvertisingBureau/iabtcf-java,
# iabtcf-decoder/src/test/java/com/iabtcf/decoder/TCStringV2Test.java
JAVA_MODEL_STRING = "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA"
JAVA_BITFIELD_STRING = (
    "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"
)
JAVA_OOB_SEGMENTS = ".IBAgAAAgAIAwgAgAAAAEAAAACA.QAagAQAgAIAwgA"
JAVA_PUBLISHER_SEGMENT = ".cAAAAAAAITg="
JAVA_RANGE_LI_STRING = "COv__-wOv__-wC2AAAENAPCgAAAAAAAAAAAAA_wAQA_gEBABAEAAAA"
JAVA_DISCLOSED_SEGMENT = (
    ".IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAA"
    "AAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw"
)
JAVA_TWO_RANGE_STRING = (
    "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAYFfAV-BVkAGBVYFWAAA" + JAVA_DISCLOSED_SEGMENT
)
JAVA_ONE_RANGE_STRING = (
    "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAQFfgUbABAUaAAA" + JAVA_DISCLOSED_SEGMENT
)
JAVA_PURPOSES_STRING = "COwxsONOwxsONKpAAAENAdCAAMAAAAAAAAAAAAAAAAAA"

# InteractiveAdvertisingBureau/iabtcf-es, modules/core/test/ReportedIssues.test.ts
ES_ISSUE_201_STRING = (
    "CO4VGswO4VGswAfZCBDEAzCsAP_AAH_AAAigGUNf_X9fb2vj-_599_t0eY1f9_63t-wzjheMs-8NyZ-X_J4Wv2MyvB34"
    "JqQKGRgkunLBAQdtHGncTQgBwIlViTLMY02MjzNKJrJEilsbe2dYGH9vn8XT_ZKZ70-_v__7v3___33_5Ayhr_6_r7e"
    "18f3_Pvv9ujzGr_v_W9v2GccLxln3huTPy_5PC1-xmV4O_BNSBQyMEl05YICDto407iaEAOBEqsSZZjGmxkeZpRNZIkU"
    "tjb2zrAw_t8_i6f7JTPen39___d-___--__ICgKAOAAcAA4AFAAjgB6AEYALcGACAW0AtoJAHAAOAAcACgARwA9ACMA"
    "FuFABALaAW0GgDgAHAAOABQAI4AegBGAC3DgAgFtALaEQBwADgAHAAoAEcAPQAjABbiQAQC2gFtCoA4ABwADgAUACOAH"
    "oARgAtxYAIBbQC2hkAcAA4ABwAKABHAD0AIwAW40AEAtoBbQ6AOAAcAA4AFAAjgB6AEYALceACAW0AtohAHAAOAAcACg"
    "ARwA9ACMAFuRABALaAW0SgDgAHAAOABQAI4AegBGAC3JgAgFtALaKQBwADgAHAAoAEcAPQAjABblQAQC2gFtA"
)
ES_ISSUE_142_STRING = (
    "CLSYjTaOngnCIAOABBENAXCMAGOAABBAAA7IA5n-m7fP6_3fbqVv6E__PoA5Aqff3aJx8tv_1967rfnQEQoAIAAQCrwk"
    "AEABAcACABIMACAAuApEVABABUSABgBCAVSAtIoACACIArYQAHACgAFgAVwBJgDcAI7AWgMAAgBiKgAgBMgFfKQAQBRk"
    "QAQA4AFiBAAoA-AEVAJlAVgAtYcACAJcAr4eABAK8OgBgFzAOmAqwgABAWyA.IFukWSQh"
)
ES_ISSUE_156_V1_STRING = (
    "BOhwdphOxFC7tAHABBFRC--AAAAuhr_7__7-_9_-_f__9uj3Or_v_f__32ccL59v_h_7v-_7fi_20nV4u_1vft9yfk1-"
    "5ctDztp507iakivXmqdeb9v_nz3_5pxP78k89r7337Ew_v8_v-b7BCON_YxEiA"
)

# IABTechLab/iabgpp-es, modules/cmpapi/test/GppModel.test.ts ("should decode tcfeuv2 sections"):
# the tcfeuv2 section of "DBABMA~CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA".
GPP_ES_TCF_SECTION = "CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA"

# The TC string of the GPP spec examples (Global-Privacy-Platform,
# Core/Consent String Specification.md, "GPP String Examples").
GPP_SPEC_TC_STRING = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"

# The TCF spec's example with a publisher TC segment, as used with published values
# (vendorListVersion 23, policyVersion 2) in scm-spain/boros-tcf,
# src/test/infrastructure/service/IABConsentDecoderServiceTest.js.
SPEC_PUBLISHER_TC_STRING = (
    "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA"
    ".argAC0gAAAAAAAAAAAA"
)


def _java_base64_from_bit_string(bits: str) -> str:
    """TCStringV2Test.base64FromBitString: 8-bit groups (a short tail group is parsed as a
    number), then java.util.Base64.getUrlEncoder(), which pads with '='."""
    groups = [bits[i : i + 8] for i in range(0, len(bits), 8)]
    return base64.urlsafe_b64encode(bytes(int(group, 2) for group in groups)).decode()


def test_decodes_iabtcf_java_reference_string_core_fields() -> None:
    tc = decode_tc_string(JAVA_MODEL_STRING)
    assert tc.version == 2
    assert tc.created == datetime(2020, 1, 26, 17, 1, tzinfo=UTC)
    assert tc.last_updated == datetime(2021, 2, 2, 17, 1, tzinfo=UTC)
    assert tc.cmp_id == 675
    assert tc.cmp_version == 2
    assert tc.consent_screen == 1
    assert tc.vendor_list_version == 15
    assert tc.tcf_policy_version == 2
    assert tc.consent_language == "EN"
    assert tc.publisher_cc == "AA"
    assert tc.is_service_specific is False
    assert tc.purpose_one_treatment is True
    assert tc.use_non_standard_texts is False


def test_decodes_iabtcf_java_reference_string_purposes_and_special_features() -> None:
    tc = decode_tc_string(JAVA_MODEL_STRING)
    assert tc.special_feature_optins == {1}
    assert tc.purposes_consent == {2, 10}
    assert tc.purposes_li_transparency == {2, 9}


def test_decodes_iabtcf_java_bitfield_vendor_sections() -> None:
    tc = decode_tc_string(JAVA_BITFIELD_STRING)
    assert tc.purposes_consent == {3, 4, 5, 6, 7, 8, 9}
    assert tc.vendor_consents == {23, 37, 47, 48, 53, 65, 98}
    assert tc.vendor_legitimate_interests == {37, 47, 48, 53, 65, 98, 129}


def test_decodes_iabtcf_java_disclosed_and_allowed_vendors() -> None:
    tc = decode_tc_string(JAVA_BITFIELD_STRING + JAVA_OOB_SEGMENTS)
    assert tc.disclosed_vendors == frozenset({23, 37, 47, 48, 53, 65, 98, 129})
    assert tc.allowed_vendors == frozenset({12, 23, 37, 47, 48, 53})
    assert tc.vendor_consents == {23, 37, 47, 48, 53, 65, 98}


def test_decodes_iabtcf_java_publisher_segment_with_equals_padding() -> None:
    tc = decode_tc_string(JAVA_BITFIELD_STRING + JAVA_OOB_SEGMENTS + JAVA_PUBLISHER_SEGMENT)
    assert tc.publisher_tc is not None
    assert len(tc.publisher_tc.purposes_consent) == 1  # the published assertion


def test_decodes_iabtcf_java_range_encoded_legitimate_interests() -> None:
    assert decode_tc_string(JAVA_RANGE_LI_STRING).vendor_legitimate_interests == {128}


def test_decodes_iabtcf_java_range_encoded_vendor_consents() -> None:
    assert decode_tc_string(JAVA_TWO_RANGE_STRING).vendor_consents == {702, 703}
    assert decode_tc_string(JAVA_ONE_RANGE_STRING).vendor_consents == {703}


def test_decodes_iabtcf_java_purposes_consent() -> None:
    assert {1, 2} <= decode_tc_string(JAVA_PURPOSES_STRING).purposes_consent


def test_decodes_iabtcf_java_publisher_restrictions_built_from_bits() -> None:
    core_rows = [  # 13 rows of 19 bits, copied from the Java test
        "0000100011101011100",
        "1000000000000001010",
        "0000001110101110010",
        "0000000000000101000",
        "0000110011111000000",
        "0000000000000000100",
        "0011010000000011110",
        "0001000000000000000",
    ] + ["0000000000000000000"] * 5
    restrictions = "000000000011"  # NumPubRestrictions = 3
    restrictions += "000001" + "01" + "000000000000"  # purpose 1, require consent, 0 entries
    restrictions += "000010" + "00" + "000000000000"  # purpose 2, not allowed
    restrictions += "000011" + "10" + "000000000000"  # purpose 3, require LI
    restrictions += "0"  # padding
    core_without_restrictions = "".join(core_rows)
    bits = core_without_restrictions + restrictions
    assert len(bits) == 320
    tc = decode_tc_string(_java_base64_from_bit_string(bits))
    assert tc.publisher_restrictions == (
        PublisherRestriction(1, RestrictionType.REQUIRE_CONSENT, frozenset()),
        PublisherRestriction(2, RestrictionType.NOT_ALLOWED, frozenset()),
        PublisherRestriction(3, RestrictionType.REQUIRE_LEGITIMATE_INTEREST, frozenset()),
    )


def test_decodes_iabtcf_java_publisher_purposes_built_from_bits() -> None:
    segment = "011" + "1" + "0" * 23 + "0" * 23 + "1" + "000010" + "01" + "11" + "000"
    tc = decode_tc_string(JAVA_MODEL_STRING + "." + _java_base64_from_bit_string(segment))
    assert tc.publisher_tc is not None
    assert tc.publisher_tc.purposes_consent == {1}
    assert tc.publisher_tc.purposes_li_transparency == {24}
    assert tc.publisher_tc.custom_purposes_consent == {2}
    assert tc.publisher_tc.custom_purposes_li_transparency == {1, 2}
    assert tc.publisher_tc.num_custom_purposes == 2


def test_decodes_iabtcf_es_issue_201_string_with_vendor_listed_in_several_restrictions() -> None:
    tc = decode_tc_string(ES_ISSUE_201_STRING)
    assert tc.version == 2
    purpose_1_require_consent = [
        r
        for r in tc.publisher_restrictions
        if r.purpose_id == 1 and r.restriction_type == RestrictionType.REQUIRE_CONSENT
    ]
    assert [sorted(r.vendors) for r in purpose_1_require_consent] == [[7, 20, 71, 122, 140, 183]]


def test_rejects_iabtcf_es_issue_142_string_whose_bitfield_is_shorter_than_max_vendor_id() -> None:
    with pytest.raises(TCStringError, match="DisclosedVendors.BitField"):
        decode_tc_string(ES_ISSUE_142_STRING)


def test_rejects_tcf_v1_consent_string_with_a_clear_message() -> None:
    with pytest.raises(TCStringError, match="version 1.*TCF v1"):
        decode_tc_string(ES_ISSUE_156_V1_STRING)


def test_decodes_iabgpp_es_tcfeuv2_section_values() -> None:
    tc = decode_tc_string(GPP_ES_TCF_SECTION)
    assert (tc.version, tc.cmp_id, tc.cmp_version, tc.consent_screen) == (2, 880, 0, 0)
    assert (tc.consent_language, tc.vendor_list_version, tc.tcf_policy_version) == ("EN", 48, 2)
    assert (tc.is_service_specific, tc.use_non_standard_texts) == (False, False)
    assert (tc.purpose_one_treatment, tc.publisher_cc) == (False, "AA")
    assert tc.created == tc.last_updated == datetime(2022, 1, 1, tzinfo=UTC)
    assert tc.disclosed_vendors == frozenset()  # the ".IAAA" segment: present but empty


def test_decodes_spec_example_with_publisher_tc_segment() -> None:
    tc = decode_tc_string(SPEC_PUBLISHER_TC_STRING)
    assert tc.vendor_list_version == 23
    assert tc.tcf_policy_version == 2
    assert tc.publisher_tc is not None


@pytest.mark.parametrize(
    "reference",
    [JAVA_MODEL_STRING, JAVA_PURPOSES_STRING, GPP_SPEC_TC_STRING],
    ids=["iabtcf-java-model", "iabtcf-java-purposes", "gpp-spec-example"],
)
def test_reencodes_reference_strings_byte_for_byte(reference: str) -> None:
    assert encode_tc_string(decode_tc_string(reference)) == reference


@pytest.mark.parametrize(
    "reference",
    [
        JAVA_BITFIELD_STRING + JAVA_OOB_SEGMENTS + JAVA_PUBLISHER_SEGMENT,
        JAVA_RANGE_LI_STRING,
        JAVA_TWO_RANGE_STRING,
        ES_ISSUE_201_STRING,
        SPEC_PUBLISHER_TC_STRING,
        GPP_ES_TCF_SECTION,
    ],
)
def test_reencoded_reference_strings_decode_to_the_same_values(reference: str) -> None:
    decoded = decode_tc_string(reference)
    reencoded = encode_tc_string(decoded)
    assert "=" not in reencoded
    assert decode_tc_string(reencoded) == decoded
