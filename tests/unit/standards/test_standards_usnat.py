"""The usnat GPP section (id 7), versions 1 and 2, with the optional GPC sub-section.

Reference strings and values: IABTechLab/iabgpp-es, modules/cmpapi/test/encoder/section/
UsNat.test.ts (v2 layout; decoded with chai `.to.eql` assertions) and UsNatV1.test.ts (v1 layout;
the encode assertions). iabgpp-es pads every sub-section to a whole byte before base64url, so
its strings are reproduced with ``byte_align=True``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from consentry.standards import GPPError, UsNat, decode_usnat, encode_usnat
from consentry.standards._bits import decode_base64url

ES_V2_ALL_FIELDS = UsNat(
    version=2,
    sharing_notice=1,
    sale_opt_out_notice=1,
    sharing_opt_out_notice=1,
    targeted_advertising_opt_out_notice=1,
    sensitive_data_processing_opt_out_notice=1,
    sensitive_data_limit_use_notice=1,
    sale_opt_out=1,
    sharing_opt_out=1,
    targeted_advertising_opt_out=1,
    sensitive_data_processing=(2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2),
    known_child_sensitive_data_consents=(2, 1, 0),
    personal_data_consents=1,
    mspa_covered_transaction=1,
    mspa_opt_out_option_mode=1,
    mspa_service_provider_mode=2,
    gpc=True,
)

# UsNatV1.test.ts "should encode to BbbbGxsbFbA.YA" (3 is not a defined value, but fits 2 bits)
ES_V1_ALL_FIELDS = UsNat(
    version=1,
    sharing_notice=1,
    sale_opt_out_notice=2,
    sharing_opt_out_notice=3,
    targeted_advertising_opt_out_notice=1,
    sensitive_data_processing_opt_out_notice=2,
    sensitive_data_limit_use_notice=3,
    sale_opt_out=1,
    sharing_opt_out=2,
    targeted_advertising_opt_out=3,
    sensitive_data_processing=(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3),
    known_child_sensitive_data_consents=(0, 1),
    personal_data_consents=1,
    mspa_covered_transaction=1,
    mspa_opt_out_option_mode=2,
    mspa_service_provider_mode=3,
    gpc=True,
)


def test_encodes_iabgpp_es_v2_reference_string() -> None:
    assert encode_usnat(ES_V2_ALL_FIELDS, byte_align=True) == "CVVVkkkkkpFY.YA"


def test_decodes_iabgpp_es_v2_reference_string_with_gpc_subsection() -> None:
    assert decode_usnat("CVVVkkkkkpFY.YA") == ES_V2_ALL_FIELDS


def test_decodes_iabgpp_es_v2_reference_string_without_gpc_subsection() -> None:
    usnat = decode_usnat("CVVVkkkkkpFY")
    assert usnat.gpc is None
    assert usnat == replace(ES_V2_ALL_FIELDS, gpc=None)


def test_encodes_iabgpp_es_v2_defaults() -> None:
    assert encode_usnat(UsNat(mspa_covered_transaction=1, gpc=False), byte_align=True) == (
        "CAAAAAAAAABA.QA"
    )
    assert encode_usnat(UsNat(mspa_covered_transaction=1), byte_align=True) == "CAAAAAAAAABA"


def test_encodes_iabgpp_es_v1_reference_strings() -> None:
    assert encode_usnat(ES_V1_ALL_FIELDS, byte_align=True) == "BbbbGxsbFbA.YA"
    partly_set = UsNat(
        version=1,
        sharing_notice=1,
        sale_opt_out_notice=1,
        sharing_opt_out_notice=1,
        targeted_advertising_opt_out_notice=1,
        sale_opt_out=1,
        sharing_opt_out=1,
        targeted_advertising_opt_out=1,
        mspa_covered_transaction=1,
        mspa_opt_out_option_mode=1,
        gpc=True,
    )
    assert encode_usnat(partly_set, byte_align=True) == "BVQVAAAAAUA.YA"
    assert encode_usnat(
        UsNat(version=1, mspa_covered_transaction=1, gpc=False), byte_align=True
    ) == ("BAAAAAAAAQA.QA")


def test_decodes_iabgpp_es_v1_strings_with_the_v1_field_widths() -> None:
    usnat = decode_usnat("BVVVkkkklWA.YA")
    assert usnat.version == 1
    assert usnat.sensitive_data_processing == (2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0)
    assert usnat.known_child_sensitive_data_consents == (2, 1)
    assert (usnat.personal_data_consents, usnat.mspa_covered_transaction) == (1, 1)
    assert (usnat.mspa_opt_out_option_mode, usnat.mspa_service_provider_mode) == (1, 2)
    assert usnat.gpc is True
    assert decode_usnat("BbbbGxsbFbA.YA") == ES_V1_ALL_FIELDS


def test_decodes_iabgpp_es_v1_string_of_all_twos() -> None:
    usnat = decode_usnat("BqqqqqqqqqA")
    assert usnat.sensitive_data_processing == (2,) * 12
    assert usnat.known_child_sensitive_data_consents == (2, 2)
    assert usnat.sharing_notice == usnat.targeted_advertising_opt_out == 2
    assert usnat.mspa_service_provider_mode == 2
    assert usnat.gpc is None


def test_spec_padding_is_six_bit_and_decodes_to_the_same_section() -> None:
    spec_form = encode_usnat(ES_V2_ALL_FIELDS)
    assert spec_form == "CVVVkkkkkpFY.Y"  # 70 bits -> 72; GPC 3 bits -> 6
    assert decode_usnat(spec_form) == ES_V2_ALL_FIELDS
    v1_bits = decode_base64url(encode_usnat(ES_V1_ALL_FIELDS).split(".")[0])
    assert len(v1_bits) == 60  # Version 6 + 9 x 2 + 12 x 2 + 2 x 2 + 4 x 2


def test_list_fields_default_to_zeros_of_the_version_length() -> None:
    assert UsNat(mspa_covered_transaction=1).sensitive_data_processing == (0,) * 16
    assert UsNat(version=1, mspa_covered_transaction=1).known_child_sensitive_data_consents == (
        0,
        0,
    )


def test_list_fields_of_the_wrong_length_are_rejected() -> None:
    with pytest.raises(GPPError, match="need 12 and 2 or 16 and 3 values, got 13 and 0"):
        UsNat(mspa_covered_transaction=1, sensitive_data_processing=(0,) * 13)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sale_opt_out": 4}, "SaleOptOut: 4 does not fit in 2 bits"),
        ({"sensitive_data_processing": (0,) * 15 + (5,)}, r"SensitiveDataProcessing\[16\]"),
        ({"version": 3}, "unsupported usnat version 3"),
    ],
)
def test_encoding_out_of_range_values_raises_gpp_error_naming_the_field(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(GPPError, match=message):
        encode_usnat(replace(ES_V2_ALL_FIELDS, **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("z", "unsupported usnat version 51"),
        ("CVVVkkkk", "usnat core sub-section: string ended while reading KnownChildSensitive"),
        ("CVVVkkkkkpFY.gA", "unknown SubsectionType 2"),
        ("CVVVkkkkkpFY.YA.QA", "duplicate GPC sub-section"),
        ("CVVVkkkkkpFY.", "usnat sub-section 2 is empty"),
        ("CVVV*kkkkpFY", "invalid character"),
    ],
)
def test_malformed_usnat_sections_raise_gpp_error(text: str, message: str) -> None:
    with pytest.raises(GPPError, match=message):
        decode_usnat(text)
