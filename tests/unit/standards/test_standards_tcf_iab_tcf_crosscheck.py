"""Cross-check our encoder against the independent decoder of the `iab-tcf` PyPI package.

iab_tcf decodes only; it reads timestamps truncated to whole seconds as naive UTC datetimes and
exposes bitfields as {id: bool} dicts and range sections as (start, end) lists.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from typing import Any

import iab_tcf
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.standards import (
    PublisherRestriction,
    PublisherTC,
    RestrictionType,
    TCString,
    decode_tc_string,
    encode_tc_string,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _true_ids(flags: dict[int, bool]) -> set[int]:
    return {key for key, value in flags.items() if value}


def _range_ids(ranges: list[tuple[int, int]]) -> set[int]:
    return {vendor for start, end in ranges for vendor in range(start, end + 1)}


def _vendor_ids(consent: Any, kind: str) -> set[int]:
    if kind == "consent":
        if consent.is_consent_range_encoding:
            return _range_ids(consent.consented_vendors_range)
        return _true_ids(consent.consented_vendors)
    if consent.is_interests_range_encoding:
        return _range_ids(consent.interests_vendors_range)
    return _true_ids(consent.interests_vendors)


def _seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def assert_iab_tcf_agrees(encoded: str, tc: TCString) -> None:
    other = iab_tcf.decode(encoded)
    assert other.version == tc.version
    assert other.created == _seconds(tc.created)
    assert other.last_updated == _seconds(tc.last_updated)
    assert other.cmp_id == tc.cmp_id
    assert other.cmp_version == tc.cmp_version
    assert other.consent_screen == tc.consent_screen
    assert other.consent_language.decode() == tc.consent_language
    assert other.vendor_list_version == tc.vendor_list_version
    assert other.tcf_policy_version == tc.tcf_policy_version
    assert other.is_service_specific == tc.is_service_specific
    assert other.use_non_standard_stacks == tc.use_non_standard_texts
    assert _true_ids(other.special_features_optin) == tc.special_feature_optins
    assert _true_ids(other.purposes_consent) == tc.purposes_consent
    assert _true_ids(other.purposes_legitimate_interests) == tc.purposes_li_transparency
    assert other.purpose_one_treatment == tc.purpose_one_treatment
    assert other.publisher_cc.decode() == tc.publisher_cc
    assert _vendor_ids(other, "consent") == tc.vendor_consents
    assert _vendor_ids(other, "interests") == tc.vendor_legitimate_interests
    theirs = [
        (entry.purpose_id, entry.restriction_type, _range_ids(entry.restrictions_range))
        for entry in other.pub_restriction_entries
    ]
    ours = [
        (r.purpose_id, int(r.restriction_type), set(r.vendors)) for r in tc.publisher_restrictions
    ]
    assert theirs == ours
    if tc.disclosed_vendors is None:
        assert not hasattr(other, "oob_disclosed_vendors")
    else:
        assert _true_ids(other.oob_disclosed_vendors) == tc.disclosed_vendors
    if tc.publisher_tc is None:
        assert not hasattr(other, "publisher_tc")
    else:
        pub = other.publisher_tc
        assert _true_ids(pub.purposes_consent) == tc.publisher_tc.purposes_consent
        assert _true_ids(pub.purposes_lit_transparency) == tc.publisher_tc.purposes_li_transparency
        assert _true_ids(pub.custom_purposes_consent) == tc.publisher_tc.custom_purposes_consent
        assert (
            _true_ids(pub.custom_purposes_lit_transparency)
            == tc.publisher_tc.custom_purposes_li_transparency
        )


def id_sets(max_id: int, max_size: int) -> st.SearchStrategy[frozenset[int]]:
    return st.frozensets(st.integers(1, max_id), max_size=max_size)


vendor_sets = st.one_of(
    id_sets(500, 30),
    id_sets(20000, 4),
    st.builds(lambda a, n: frozenset(range(a, a + n)), st.integers(1, 900), st.integers(0, 200)),
)
# iab_tcf converts timestamps with datetime.utcfromtimestamp: stay within 2000..2100.
timestamps = st.integers(9_466_848_000, 41_024_448_000).map(
    lambda ds: EPOCH + timedelta(milliseconds=100 * ds)
)
letters = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2)
tc_strings = st.builds(
    TCString,
    created=timestamps,
    last_updated=timestamps,
    cmp_id=st.integers(0, 4095),
    cmp_version=st.integers(0, 4095),
    consent_screen=st.integers(0, 63),
    consent_language=letters,
    vendor_list_version=st.integers(0, 4095),
    tcf_policy_version=st.integers(0, 63),
    is_service_specific=st.booleans(),
    use_non_standard_texts=st.booleans(),
    special_feature_optins=id_sets(12, 12),
    purposes_consent=id_sets(24, 24),
    purposes_li_transparency=id_sets(24, 24),
    purpose_one_treatment=st.booleans(),
    publisher_cc=letters,
    vendor_consents=vendor_sets,
    vendor_legitimate_interests=vendor_sets,
    publisher_restrictions=st.lists(
        st.builds(
            PublisherRestriction,
            purpose_id=st.integers(1, 24),
            restriction_type=st.sampled_from(RestrictionType),
            vendors=vendor_sets,
        ),
        max_size=3,
    ).map(tuple),
    disclosed_vendors=st.none() | vendor_sets,
    publisher_tc=st.none()
    | st.builds(
        PublisherTC,
        purposes_consent=id_sets(24, 24),
        purposes_li_transparency=id_sets(24, 24),
        custom_purposes_consent=id_sets(63, 8),
        custom_purposes_li_transparency=id_sets(63, 8),
    ),
)


@settings(max_examples=60)
@given(tc_strings)
def test_iab_tcf_package_decodes_our_encoded_strings_to_the_same_values(tc: TCString) -> None:
    assert_iab_tcf_agrees(encode_tc_string(tc), tc)


def test_iab_tcf_package_agrees_on_a_range_encoded_string_with_all_segments() -> None:
    day = datetime(2026, 3, 2, tzinfo=UTC)
    tc = TCString(
        created=day,
        last_updated=day,
        cmp_id=300,
        vendor_list_version=140,
        vendor_consents=frozenset({1, 1000, 1001, 1002}),
        publisher_restrictions=(
            PublisherRestriction(2, RestrictionType.NOT_ALLOWED, frozenset({5, 6, 7, 90})),
        ),
        disclosed_vendors=frozenset(range(1, 1500)),
        publisher_tc=PublisherTC(
            purposes_consent=frozenset({1}), custom_purposes_consent=frozenset({3})
        ),
    )
    encoded = encode_tc_string(tc)
    assert iab_tcf.decode(encoded).is_consent_range_encoding is True
    assert_iab_tcf_agrees(encoded, tc)


def test_iab_tcf_package_agrees_with_us_on_the_iabtcf_java_reference_string() -> None:
    # InteractiveAdvertisingBureau/iabtcf-java, TCStringV2Test.java (bitfields + OOB segments)
    reference = (
        "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"
        ".IBAgAAAgAIAwgAgAAAAEAAAACA"
    )
    assert_iab_tcf_agrees(reference, decode_tc_string(reference))
