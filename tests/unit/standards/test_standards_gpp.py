"""GPP strings: header (Fibonacci range of section ids), section dispatch, spec and iabgpp-es
reference strings, round trips and errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.standards import (
    GPPError,
    GPPString,
    RawSection,
    TCString,
    UsNat,
    decode_gpp,
    decode_tc_string,
    encode_gpp,
)
from consentry.standards._bits import BASE64URL_ALPHABET, decode_base64url
from consentry.standards.gpp import _decode_header, _encode_header

# Global-Privacy-Platform, Core/Consent String Specification.md ("GPP String Examples").
SPEC_TC = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"
SPEC_EXAMPLE_1 = "DBABMA~" + SPEC_TC
SPEC_EXAMPLE_2 = "DBACNYA~" + SPEC_TC + "~1YNN"
SPEC_EXAMPLE_3 = "DBABjw~" + SPEC_TC + "~1YNN"

# IABTechLab/iabgpp-es, modules/cmpapi/test/GppModel.test.ts
ES_TCF_AND_USP = "DBACNYA~CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA~1YNN"
ES_USP_ONLY = "DBABTA~1YNN"
ES_ALL_DEFAULTS = (
    "DBACOaw~CPSG_8APSG_8AAAAAAENAACAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA~CPSG_8APSG_8AAAAAAENAACAAAAAA"
    "AAAAAAAAAAA.YAAAAAAAAAA~1---~BAAAAAAAAAA.QA~BAAAAAAA.QA~BAAAAAA~BAAAAAA.QA~BAAAAAAA~BAAAAAAA"
    ".QA"
)

HEADER_PREFIX = "000011" + "000001"  # Type 3, Version 1


def header_bits(section_ids: tuple[int, ...]) -> str:
    return decode_base64url(_encode_header(section_ids, byte_align=False))


# --------------------------------------------------------------------------------------- header


@pytest.mark.parametrize(
    ("section_ids", "spec_header", "es_header"),
    [((2,), "DBABM", "DBABMA"), ((2, 6), "DBACNY", "DBACNYA"), ((5, 6), "DBABjw", "DBABjw")],
)
def test_header_matches_spec_examples_and_iabgpp_es_with_byte_alignment(
    section_ids: tuple[int, ...], spec_header: str, es_header: str
) -> None:
    assert _encode_header(section_ids, byte_align=False) == spec_header
    assert _encode_header(section_ids, byte_align=True) == es_header
    assert _decode_header(spec_header, 2) == _decode_header(es_header, 2) == list(section_ids)


def test_header_bits_match_the_spec_example_bit_representation() -> None:
    # spec Header Example 2: 000011 000001 000000 000010 001101 011000
    assert header_bits((2, 6)) == "000011000001000000000010001101011000"
    # spec Header Example 3: a group of 5..6 -> 000011 000001 000000 000001 100011 110000
    assert header_bits((5, 6)) == "000011000001000000000001100011110000"


# IABTechLab/iabgpp-es, modules/cmpapi/test/encoder/datatype/encoder/
# FibonacciIntegerRangeEncoder.test.ts: (ids, bits of the Range(Fibonacci) field)
FIBONACCI_RANGE_CASES = [
    ((), "000000000000"),
    ((2,), "0000000000010011"),
    ((2, 3, 4, 5, 6), "00000000000110111011"),
    ((2, 5, 6, 7), "000000000010001110011011"),
    ((3, 5, 6, 7, 8), "0000000000100001110110011"),
    ((2, 5, 6, 7, 8, 9, 10, 11, 12), "00000000001000111001101011"),
]


@pytest.mark.parametrize(("section_ids", "range_bits"), FIBONACCI_RANGE_CASES)
def test_section_ids_are_a_fibonacci_range_as_in_iabgpp_es(
    section_ids: tuple[int, ...], range_bits: str
) -> None:
    bits = header_bits(section_ids)
    assert bits.startswith(HEADER_PREFIX + range_bits)
    assert set(bits[len(HEADER_PREFIX + range_bits) :]) <= {"0"}
    assert len(bits) - len(HEADER_PREFIX + range_bits) < 6


def test_empty_gpp_string_is_header_only() -> None:
    # iabgpp-es GppModel.test.ts "should encode empty sections to only a header"
    assert encode_gpp(GPPString(), byte_align=True) == "DBAA"
    assert decode_gpp("DBAA") == GPPString()


# ------------------------------------------------------------------------- reference strings


def test_decodes_gpp_spec_example_1_tcfeuv2_section() -> None:
    gpp = decode_gpp(SPEC_EXAMPLE_1)
    assert gpp.section_ids == (2,)
    assert gpp.tcfeuv2 == decode_tc_string(SPEC_TC)
    assert gpp.unknown_section_ids == ()


def test_decodes_gpp_spec_example_2_and_keeps_uspv1_raw() -> None:
    gpp = decode_gpp(SPEC_EXAMPLE_2)
    assert gpp.section_ids == (2, 6)
    assert gpp.section(6) == RawSection(6, "1YNN")
    assert gpp.unknown_section_ids == (6,)
    assert gpp.usnat is None


def test_decodes_gpp_spec_example_3_with_a_grouped_header_range() -> None:
    gpp = decode_gpp(SPEC_EXAMPLE_3)
    assert gpp.section_ids == (5, 6)
    assert gpp.unknown_section_ids == (5, 6)
    assert gpp.section(5) == RawSection(5, SPEC_TC)


@pytest.mark.parametrize("reference", [SPEC_EXAMPLE_1, SPEC_EXAMPLE_2, SPEC_EXAMPLE_3, ES_USP_ONLY])
def test_reencodes_reference_gpp_strings_byte_for_byte_in_byte_aligned_mode(reference: str) -> None:
    assert encode_gpp(decode_gpp(reference), byte_align=True) == reference


def test_spec_mode_header_is_one_character_shorter_than_iabgpp_es_output() -> None:
    assert encode_gpp(decode_gpp(SPEC_EXAMPLE_1)) == "DBABM~" + SPEC_TC
    assert decode_gpp("DBABM~" + SPEC_TC) == decode_gpp(SPEC_EXAMPLE_1)


def test_decodes_iabgpp_es_tcfeuv2_and_uspv1_sections() -> None:
    gpp = decode_gpp(ES_TCF_AND_USP)
    assert gpp.section_ids == (2, 6)
    tc = gpp.tcfeuv2
    assert tc is not None
    assert (tc.cmp_id, tc.vendor_list_version, tc.tcf_policy_version) == (880, 48, 2)
    assert (tc.consent_language, tc.publisher_cc) == ("EN", "AA")
    assert tc.created == tc.last_updated == datetime(2022, 1, 1, tzinfo=UTC)
    assert gpp.section(6) == RawSection(6, "1YNN")


def test_decodes_iabgpp_es_all_sections_string_and_lists_unknown_sections() -> None:
    gpp = decode_gpp(ES_ALL_DEFAULTS)
    assert gpp.section_ids == (2, 5, 6, 7, 8, 9, 10, 11, 12)
    assert gpp.unknown_section_ids == (5, 6, 8, 9, 10, 11, 12)
    assert gpp.usnat is not None
    assert gpp.usnat.version == 1
    assert gpp.usnat.gpc is False
    assert gpp.section(8) == RawSection(8, "BAAAAAAA.QA")


# ----------------------------------------------------------------------------- model behaviour


def _usnat() -> UsNat:
    return UsNat(mspa_covered_transaction=2, sale_opt_out=1, sale_opt_out_notice=1, gpc=True)


def _tc() -> TCString:
    day = datetime(2026, 3, 2, tzinfo=UTC)
    return TCString(created=day, last_updated=day, cmp_id=300, vendor_list_version=140)


def test_sections_are_kept_in_ascending_id_order_whatever_order_they_are_given_in() -> None:
    gpp = GPPString((RawSection(8, "BAAAAAAA"), _usnat(), RawSection(6, "1YNN"), _tc()))
    assert gpp.section_ids == (2, 6, 7, 8)
    encoded = encode_gpp(gpp)
    assert decode_gpp(encoded) == gpp
    assert encoded.split("~")[2] == "1YNN"


def test_duplicate_section_ids_are_rejected() -> None:
    with pytest.raises(GPPError, match=r"duplicate GPP section ids \[7\]"):
        GPPString((_usnat(), UsNat(mspa_covered_transaction=1)))


@pytest.mark.parametrize(
    ("section_id", "value", "message"),
    [
        (2, "CPXx", "must be given as a TCString"),
        (7, "CVVV", "must be given as a UsNat"),
        (0, "x", "section id must be >= 1"),
        (6, "", "non-empty"),
        (6, "1Y~NN", "without '~'"),
    ],
)
def test_raw_sections_are_validated(section_id: int, value: str, message: str) -> None:
    with pytest.raises(GPPError, match=message):
        RawSection(section_id, value)


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "GPP header is empty"),
        ("DB?A~1YNN", "GPP header has invalid character '\\?'"),
        (SPEC_TC, "Type is 2, expected 3 .*TCF TC string"),
        ("DCABM~" + SPEC_TC, "unsupported Version 2"),
        ("DBAB", "string ended while reading Sections.IsGroup"),
        ("DBABM", "lists 1 section\\(s\\) \\[2\\] but the string has 0"),
        ("DBACNY~" + SPEC_TC, "lists 2 section\\(s\\) \\[2, 6\\] but the string has 1"),
        ("DBABTA~", "section 6 \\(uspv1\\) is empty"),
        ("DBABM~CPXxRf", "section 2 \\(tcfeuv2\\): core segment: string ended while reading"),
        ("DBABM~DPXxRfAPXxRfAAfKABENB", "section 2 \\(tcfeuv2\\): unsupported TC string version 3"),
        ("DBABL~z", "unsupported usnat version 51"),
    ],
)
def test_malformed_gpp_strings_raise_gpp_error_with_a_helpful_message(
    text: str, message: str
) -> None:
    with pytest.raises(GPPError, match=message):
        decode_gpp(text)


def test_non_string_input_is_rejected_with_gpp_error() -> None:
    with pytest.raises(GPPError, match="must be a str"):
        decode_gpp(None)  # type: ignore[arg-type]


def test_encoding_an_invalid_tcfeuv2_section_raises_gpp_error() -> None:
    bad = TCString(
        created=_tc().created, last_updated=_tc().created, cmp_id=9999, vendor_list_version=1
    )
    with pytest.raises(GPPError, match="section 2 \\(tcfeuv2\\): .*CmpId"):
        encode_gpp(GPPString((bad,)))


# ------------------------------------------------------------------------------ round trips

two_bit = st.integers(0, 3)


@st.composite
def usnat_sections(draw: st.DrawFn) -> UsNat:
    version = draw(st.sampled_from([1, 2]))
    sdp_count, child_count = {1: (12, 2), 2: (16, 3)}[version]
    return UsNat(
        version=version,
        sharing_notice=draw(two_bit),
        sale_opt_out_notice=draw(two_bit),
        sharing_opt_out_notice=draw(two_bit),
        targeted_advertising_opt_out_notice=draw(two_bit),
        sensitive_data_processing_opt_out_notice=draw(two_bit),
        sensitive_data_limit_use_notice=draw(two_bit),
        sale_opt_out=draw(two_bit),
        sharing_opt_out=draw(two_bit),
        targeted_advertising_opt_out=draw(two_bit),
        sensitive_data_processing=tuple(
            draw(st.lists(two_bit, min_size=sdp_count, max_size=sdp_count))
        ),
        known_child_sensitive_data_consents=tuple(
            draw(st.lists(two_bit, min_size=child_count, max_size=child_count))
        ),
        personal_data_consents=draw(two_bit),
        mspa_covered_transaction=draw(two_bit),
        mspa_opt_out_option_mode=draw(two_bit),
        mspa_service_provider_mode=draw(two_bit),
        gpc=draw(st.none() | st.booleans()),
    )


tc_sections = st.builds(
    TCString,
    created=st.just(datetime(2026, 3, 2, tzinfo=UTC)),
    last_updated=st.just(datetime(2026, 3, 2, tzinfo=UTC)),
    cmp_id=st.integers(2, 4095),
    vendor_list_version=st.integers(1, 4095),
    purposes_consent=st.frozensets(st.integers(1, 24)),
    vendor_consents=st.frozensets(st.integers(1, 3000), max_size=20),
    disclosed_vendors=st.none() | st.frozensets(st.integers(1, 3000), max_size=20),
)
raw_sections = st.builds(
    RawSection,
    section_id=st.integers(1, 300).filter(lambda i: i not in (2, 7)),
    value=st.text(alphabet=BASE64URL_ALPHABET + ".", min_size=1, max_size=24),
)


@st.composite
def gpp_strings(draw: st.DrawFn) -> GPPString:
    sections: list[TCString | UsNat | RawSection] = []
    if draw(st.booleans()):
        sections.append(draw(tc_sections))
    if draw(st.booleans()):
        sections.append(draw(usnat_sections()))
    raws = draw(st.lists(raw_sections, max_size=6, unique_by=lambda r: r.section_id))
    sections.extend(raws)
    return GPPString(tuple(sections))


@given(gpp_strings(), st.booleans())
def test_decode_of_encode_returns_an_equal_gpp_string(gpp: GPPString, byte_align: bool) -> None:
    encoded = encode_gpp(gpp, byte_align=byte_align)
    assert decode_gpp(encoded) == gpp
    assert encode_gpp(decode_gpp(encoded), byte_align=byte_align) == encoded


@given(st.lists(st.integers(1, 5000), unique=True, max_size=40))
def test_any_set_of_section_ids_survives_the_header(section_ids: list[int]) -> None:
    ordered = tuple(sorted(section_ids))
    for byte_align in (False, True):
        assert _decode_header(_encode_header(ordered, byte_align=byte_align), len(ordered)) == list(
            ordered
        )
