"""validate_tc_string: TCF 2.2 / 2.3 policy checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from consentry.standards import (
    PolicyIssue,
    PublisherRestriction,
    PublisherTC,
    RestrictionType,
    TCString,
    decode_tc_string,
    validate_tc_string,
)

DAY = datetime(2026, 3, 2, tzinfo=UTC)

VALID = TCString(
    created=DAY,
    last_updated=DAY,
    cmp_id=300,
    cmp_version=2,
    vendor_list_version=140,
    tcf_policy_version=5,
    purposes_consent=frozenset({1, 2, 3, 4}),
    purposes_li_transparency=frozenset({2, 7, 10}),
    vendor_consents=frozenset({10, 20}),
    vendor_legitimate_interests=frozenset({20}),
    disclosed_vendors=frozenset({10, 20, 30}),
    publisher_tc=PublisherTC(
        purposes_consent=frozenset({1}), purposes_li_transparency=frozenset({2})
    ),
)


def codes(issues: list[PolicyIssue], severity: str | None = None) -> set[str]:
    return {i.code for i in issues if severity is None or i.severity == severity}


def test_a_compliant_tcf_2_3_string_has_no_issues() -> None:
    assert validate_tc_string(VALID, now=DAY + timedelta(hours=1)) == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"version": 3}, "unsupported_version"),
        ({"is_service_specific": False}, "not_service_specific"),
        ({"cmp_id": 1}, "invalid_cmp_id"),
        ({"vendor_list_version": 0}, "missing_vendor_list_version"),
        ({"tcf_policy_version": 3}, "outdated_policy_version"),
        ({"consent_language": "E1"}, "invalid_letters"),
        ({"created": DAY + timedelta(days=1)}, "created_after_last_updated"),
        ({"purposes_li_transparency": frozenset({2, 3, 6})}, "li_not_allowed_for_purposes_3_to_6"),
        ({"purposes_consent": frozenset({0, 25})}, "id_out_of_range"),
        ({"disclosed_vendors": None}, "disclosed_vendors_missing"),
        ({"created": datetime(2026, 3, 2)}, "naive_timestamp"),
        (
            {"publisher_tc": PublisherTC(purposes_li_transparency=frozenset({4}))},
            "publisher_li_not_allowed_for_purposes_3_to_6",
        ),
        (
            {
                "publisher_restrictions": (
                    PublisherRestriction(
                        1, RestrictionType.REQUIRE_LEGITIMATE_INTEREST, frozenset({10})
                    ),
                )
            },
            "restriction_requires_forbidden_li",
        ),
        (
            {
                "publisher_restrictions": (
                    PublisherRestriction(
                        5, RestrictionType.REQUIRE_LEGITIMATE_INTEREST, frozenset({10})
                    ),
                )
            },
            "restriction_requires_forbidden_li",
        ),
        (
            {
                "publisher_restrictions": (
                    PublisherRestriction(30, RestrictionType.NOT_ALLOWED, frozenset({10})),
                )
            },
            "restriction_purpose_out_of_range",
        ),
    ],
)
def test_each_policy_violation_is_reported_as_an_error(
    changes: dict[str, object], code: str
) -> None:
    issues = validate_tc_string(replace(VALID, **changes))  # type: ignore[arg-type]
    assert code in codes(issues, "error"), issues
    assert all(issue.message for issue in issues)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"created": DAY - timedelta(days=3)}, "created_differs_from_last_updated"),
        (
            {"created": DAY + timedelta(hours=5), "last_updated": DAY + timedelta(hours=5)},
            "timestamp_not_day_rounded",
        ),
        ({"purposes_li_transparency": frozenset({1})}, "li_for_purpose_1"),
        ({"vendor_consents": frozenset({10, 99})}, "vendors_not_disclosed"),
        (
            {
                "publisher_restrictions": (
                    PublisherRestriction(2, RestrictionType.UNDEFINED, frozenset({10})),
                )
            },
            "restriction_type_undefined",
        ),
    ],
)
def test_soft_problems_are_reported_as_warnings(changes: dict[str, object], code: str) -> None:
    issues = validate_tc_string(replace(VALID, **changes))  # type: ignore[arg-type]
    assert code in codes(issues, "warning"), issues
    assert codes(issues, "error") == set()


@pytest.mark.parametrize("purpose", [3, 4, 5, 6])
def test_legitimate_interest_is_forbidden_for_each_of_purposes_3_to_6(purpose: int) -> None:
    tc = replace(VALID, purposes_li_transparency=frozenset({2, purpose}))
    [issue] = validate_tc_string(tc)
    assert (issue.severity, issue.code) == ("error", "li_not_allowed_for_purposes_3_to_6")
    assert f"[{purpose}]" in issue.message


def test_legitimate_interest_for_purposes_3_to_6_was_allowed_before_policy_4() -> None:
    old = replace(VALID, tcf_policy_version=2, purposes_li_transparency=frozenset({3, 4}))
    assert "li_not_allowed_for_purposes_3_to_6" not in codes(validate_tc_string(old))


def test_disclosed_vendors_are_optional_for_policy_4_strings_created_before_the_deadline() -> None:
    before = datetime(2026, 2, 28, tzinfo=UTC)
    tc = replace(VALID, tcf_policy_version=4, created=before, last_updated=before)
    assert validate_tc_string(replace(tc, disclosed_vendors=None)) == []


def test_disclosed_vendors_are_mandatory_for_policy_5_even_before_the_deadline() -> None:
    before = datetime(2025, 12, 1, tzinfo=UTC)
    tc = replace(VALID, created=before, last_updated=before, disclosed_vendors=None)
    [issue] = validate_tc_string(tc)
    assert (issue.severity, issue.code) == ("error", "disclosed_vendors_missing")
    assert "TcfPolicyVersion 5" in issue.message


def test_disclosed_vendors_are_mandatory_for_strings_created_after_28_february_2026() -> None:
    tc = replace(VALID, tcf_policy_version=4, disclosed_vendors=None)
    assert "disclosed_vendors_missing" in codes(validate_tc_string(tc), "error")


def test_future_timestamp_is_only_checked_when_now_is_given() -> None:
    assert validate_tc_string(VALID) == []
    issues = validate_tc_string(VALID, now=DAY - timedelta(days=1))
    assert codes(issues) == {"timestamp_in_future"}


def test_restriction_requiring_consent_is_fine_for_any_purpose() -> None:
    restriction = PublisherRestriction(5, RestrictionType.REQUIRE_CONSENT, frozenset({10}))
    assert validate_tc_string(replace(VALID, publisher_restrictions=(restriction,))) == []


def test_iabtcf_java_reference_string_fails_current_policy() -> None:
    # InteractiveAdvertisingBureau/iabtcf-java, TCStringV2Test.java: a global (IsServiceSpecific
    # = 0), policy version 2 string from 2020.
    tc = decode_tc_string("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA")
    assert {"not_service_specific", "outdated_policy_version"} <= codes(
        validate_tc_string(tc), "error"
    )
