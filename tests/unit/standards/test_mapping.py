"""From permission states to TC string, GPP and Consent Mode (consentry.standards.mapping).

The test catalogue maps ``ads`` to TCF purposes 1-4 and 7 with vendor 3001 (its recipient
Adnet), ``recs`` to purposes 5-6 with no vendor, and Consent Mode types for ads, recs, orders
(contract) and fraud (legitimate interest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.catalogue import Catalogue
from consentry.standards import (
    RestrictionType,
    TCString,
    decode_gpp,
    decode_tc_string,
    validate_tc_string,
)
from consentry.standards.mapping import (
    consent_mode,
    honoured_gpc,
    signals,
    tc_string,
    usnat_section,
)
from support import MINI

NOW = datetime(2026, 11, 29, 15, 30, tzinfo=UTC)
CONSENT_ONLY = {
    "ad_storage",
    "analytics_storage",
    "ad_user_data",
    "ad_personalization",
    "personalization_storage",
}


@dataclass(frozen=True)
class Status:
    id: str
    state: str = "default"
    effective: bool = False
    source: str | None = None
    updated_at: datetime | None = None


def mini_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MINI.read_text(encoding="utf-8"))
    return data


def catalogue(data: dict[str, Any] | None = None) -> Catalogue:
    return Catalogue.model_validate(data if data is not None else mini_data())


def permission(data: dict[str, Any], pid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in data["permissions"] if p["id"] == pid)
    return found


MINI_CATALOGUE = catalogue()
BASES = {
    "recs": "consent",
    "ads": "consent",
    "email": "consent",
    "orders": "contract",
    "fraud": "legitimate_interest",
    "tax": "legal_obligation",
    "sale": "consent",
    "location": "consent",
}


def states(**overrides: Status) -> list[Status]:
    """Every permission of the test catalogue at its state for a subject who never chose
    (consent: not in effect; other bases: in effect), with ``overrides`` by id."""
    base = [Status(pid, effective=basis != "consent") for pid, basis in BASES.items()]
    return [overrides.get(s.id, s) for s in base]


def granted(pid: str, when: datetime = NOW) -> Status:
    return Status(pid, "granted", True, "web", when)


def test_a_subject_who_never_chose_has_no_consent_bit() -> None:
    tc = tc_string(catalogue(), states(), now=NOW)
    assert tc is not None
    assert tc.purposes_consent == frozenset()
    assert tc.vendor_consents == frozenset()
    assert tc.special_feature_optins == frozenset()
    assert tc.publisher_restrictions == ()
    assert tc.disclosed_vendors == frozenset({3001})  # disclosed, not consented


def test_an_explicit_grant_sets_its_purposes_and_vendors() -> None:
    tc = tc_string(catalogue(), states(ads=granted("ads")), now=NOW)
    assert tc is not None
    assert tc.purposes_consent == frozenset({1, 2, 3, 4, 7})
    assert tc.vendor_consents == frozenset({3001})
    assert tc.publisher_restrictions == ()
    assert [i for i in validate_tc_string(tc, now=NOW) if i.severity == "error"] == []


def test_a_jurisdiction_default_grant_never_sets_a_consent_bit() -> None:
    data = mini_data()
    permission(data, "ads")["defaults"]["US-CA"] = "granted"
    cat = catalogue(data)
    by_default = Status("ads", state="default", effective=True)  # allowed by the US-CA default
    tc = tc_string(cat, states(ads=by_default), now=NOW)
    assert tc is not None and tc.purposes_consent == frozenset()
    assert tc.vendor_consents == frozenset()
    assert consent_mode(cat, states(ads=by_default))["ad_storage"] == "denied"


def test_a_grant_no_longer_in_force_sets_nothing() -> None:
    lapsed = Status("ads", "granted", effective=False, source="web", updated_at=NOW)
    tc = tc_string(catalogue(), states(ads=lapsed), now=NOW)
    assert tc is not None and tc.purposes_consent == frozenset()
    assert consent_mode(catalogue(), states(ads=lapsed))["ad_user_data"] == "denied"


def test_a_withdrawal_clears_the_bits() -> None:
    withdrawn = Status("ads", "denied", False, "web", NOW)
    tc = tc_string(catalogue(), states(ads=withdrawn), now=NOW)
    assert tc is not None and tc.purposes_consent == frozenset() and not tc.vendor_consents


def test_a_vendor_gets_no_purpose_the_subject_did_not_grant_it() -> None:
    both = states(ads=granted("ads"), recs=granted("recs"))
    tc = tc_string(catalogue(), both, now=NOW)
    assert tc is not None
    assert tc.purposes_consent == frozenset({1, 2, 3, 4, 5, 6, 7})
    assert [(r.purpose_id, r.restriction_type, r.vendors) for r in tc.publisher_restrictions] == [
        (5, RestrictionType.NOT_ALLOWED, frozenset({3001})),
        (6, RestrictionType.NOT_ALLOWED, frozenset({3001})),
    ]


def test_legitimate_interest_is_signalled_until_the_subject_objects() -> None:
    data = mini_data()
    data["recipients"]["shop"]["gvl_id"] = 3002
    permission(data, "fraud")["tcf"] = {"legitimate_interest_purposes": [2, 10]}
    cat = catalogue(data)
    tc = tc_string(cat, states(), now=NOW)
    assert tc is not None
    assert tc.purposes_li_transparency == frozenset({2, 10})
    assert tc.vendor_legitimate_interests == frozenset({3002})
    assert tc.purposes_consent == frozenset()
    objected = Status("fraud", "denied", False, "web", NOW)
    after = tc_string(cat, states(fraud=objected), now=NOW)
    assert after is not None
    assert after.purposes_li_transparency == frozenset()
    assert after.vendor_legitimate_interests == frozenset()


def test_a_special_feature_needs_an_explicit_grant() -> None:
    data = mini_data()
    permission(data, "location")["tcf"] = {"special_features": [1]}
    cat = catalogue(data)
    none = tc_string(cat, states(), now=NOW)
    some = tc_string(cat, states(location=granted("location")), now=NOW)
    assert none is not None and none.special_feature_optins == frozenset()
    assert some is not None and some.special_feature_optins == frozenset({1})


def test_dates_are_the_utc_day_of_the_latest_mapped_choice() -> None:
    early = datetime(2026, 3, 2, 23, 59, tzinfo=UTC)
    later = datetime(2026, 5, 7, 8, 0, tzinfo=UTC)
    unmapped = Status("email", "granted", True, "web", datetime(2026, 9, 1, tzinfo=UTC))
    tc = tc_string(
        catalogue(),
        states(ads=granted("ads", early), recs=granted("recs", later), email=unmapped),
        now=NOW,
    )
    assert tc is not None
    assert tc.created == tc.last_updated == datetime(2026, 5, 7, tzinfo=UTC)
    fresh = tc_string(catalogue(), states(), now=NOW)
    assert fresh is not None and fresh.last_updated == datetime(2026, 11, 29, tzinfo=UTC)


def test_the_publisher_fields_come_from_the_catalogue() -> None:
    tc = tc_string(catalogue(), states(), now=NOW, language="fr")
    assert tc is not None
    assert (tc.cmp_id, tc.cmp_version, tc.vendor_list_version, tc.tcf_policy_version) == (
        4094,
        1,
        150,
        5,
    )
    assert tc.consent_language == "FR"
    assert tc.publisher_cc == "NL"  # the controller's country
    assert tc.is_service_specific


def test_a_catalogue_without_tcf_settings_has_no_tc_string() -> None:
    data = mini_data()
    del data["tcf"]
    for perm in data["permissions"]:
        perm.pop("tcf", None)
    cat = catalogue(data)
    result = signals(cat, states(), now=NOW)
    assert result.tcf is None
    assert decode_gpp(result.gpp).section_ids == (7,)


def test_consent_mode_grants_consent_types_only_on_explicit_grants() -> None:
    assert consent_mode(catalogue(), states()) == {
        "ad_storage": "denied",
        "analytics_storage": "denied",
        "ad_user_data": "denied",
        "ad_personalization": "denied",
        "functionality_storage": "granted",  # orders: contract
        "personalization_storage": "denied",
        "security_storage": "granted",  # fraud: legitimate interest, not objected
    }
    mode = consent_mode(catalogue(), states(ads=granted("ads")))
    assert {k for k, v in mode.items() if v == "granted"} == {
        "ad_storage",
        "ad_user_data",
        "ad_personalization",
        "functionality_storage",
        "security_storage",
    }


def test_an_objection_denies_security_storage() -> None:
    objected = Status("fraud", "denied", False, "web", NOW)
    assert consent_mode(catalogue(), states(fraud=objected))["security_storage"] == "denied"


def test_usnat_says_opted_out_unless_sale_or_sharing_is_in_effect() -> None:
    cat = catalogue()
    never = usnat_section(cat, states(), gpc=False)
    assert (never.sale_opt_out, never.sharing_opt_out, never.targeted_advertising_opt_out) == (
        1,
        1,
        1,
    )
    assert (never.sale_opt_out_notice, never.sharing_opt_out_notice) == (1, 1)
    assert never.sharing_notice == 1  # ads go to an ad network, sale to a data buyer
    assert never.gpc is None
    california = Status("sale", "default", True)  # opt-out regime: sale allowed by default
    allowed = usnat_section(cat, states(sale=california, ads=granted("ads")), gpc=False)
    assert (allowed.sale_opt_out, allowed.sharing_opt_out) == (2, 2)
    assert allowed.mspa_covered_transaction == 2


def test_usnat_carries_gpc_when_the_subject_sent_it() -> None:
    assert usnat_section(catalogue(), states(), gpc=True).gpc is True


def test_a_choice_recorded_from_gpc_counts_as_gpc_sent() -> None:
    assert honoured_gpc(states(sale=Status("sale", "denied", False, "gpc", NOW)))
    assert not honoured_gpc(states(sale=Status("sale", "denied", False, "web", NOW)))


def test_the_gpp_string_carries_the_same_tc_string_and_usnat() -> None:
    result = signals(catalogue(), states(ads=granted("ads")), now=NOW, gpc=True)
    assert result.tcf is not None
    gpp = decode_gpp(result.gpp)
    assert gpp.section_ids == (2, 7)
    assert gpp.tcfeuv2 == decode_tc_string(result.tcf)
    assert gpp.usnat is not None and gpp.usnat.gpc is True


STATE = st.sampled_from(
    [
        ("default", False),
        ("default", True),
        ("granted", True),
        ("granted", False),
        ("denied", False),
    ]
)


@given(st.dictionaries(st.sampled_from(sorted(BASES)), STATE))
def test_no_consent_signal_without_an_explicit_grant_in_force(
    chosen: dict[str, tuple[str, bool]],
) -> None:
    cat = MINI_CATALOGUE
    overrides = {
        pid: Status(pid, state, effective, "web", NOW) for pid, (state, effective) in chosen.items()
    }
    current = states(**overrides)
    grants = {s.id for s in current if s.state == "granted" and s.effective}
    tc = tc_string(cat, current, now=NOW)
    assert isinstance(tc, TCString)
    allowed_purposes: set[int] = set()
    allowed_vendors: set[int] = set()
    for perm in cat.permissions:
        if perm.id in grants and perm.tcf is not None and perm.legal_basis.value == "consent":
            allowed_purposes.update(perm.tcf.purposes)
            allowed_vendors |= perm.tcf_vendors(cat.recipients)
    assert tc.purposes_consent <= allowed_purposes
    assert tc.vendor_consents <= allowed_vendors
    mode = consent_mode(cat, current)
    for kind in CONSENT_ONLY:
        if mode[kind] == "granted":
            mapped = [p for p in cat.permissions if kind in {t.value for t in p.consent_mode}]
            assert any(p.id in grants for p in mapped)
