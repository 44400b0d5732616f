"""IAB TCF v2 TC strings: policy checks (TCF 2.2 / 2.3 rules) on a decoded TC string."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from .tcf_model import MAX_VENDOR_ID, RestrictionType, TCString

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
        issues += _range_issues(vendors, 1, MAX_VENDOR_ID, name)

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
