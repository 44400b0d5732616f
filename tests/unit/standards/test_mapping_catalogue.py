"""The catalogue's optional signal mappings (tcf, consent_mode, gvl_id): what it refuses, and the
demo catalogue's mappings producing policy-clean TC strings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from consentry.catalogue_io import load_catalogue
from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_vocabulary import LegalBasis
from consentry.standards import validate_tc_string
from consentry.standards.mapping import consent_mode, tc_string
from support import MINI

MARKETPLACE = Path(__file__).resolve().parents[3] / "catalogues" / "marketplace.yaml"
NOW = datetime(2026, 11, 29, tzinfo=UTC)


def mini_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MINI.read_text(encoding="utf-8"))
    return data


def permission(data: dict[str, Any], pid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in data["permissions"] if p["id"] == pid)
    return found


def rejected(change: Callable[[dict[str, Any]], None]) -> str:
    data = mini_data()
    change(data)
    with pytest.raises(ValidationError) as info:
        Catalogue.model_validate(data)
    return str(info.value)


def test_the_test_catalogue_maps_ads_to_tcf_and_consent_mode() -> None:
    cat = load_catalogue(MINI)
    ads = cat.permission("ads")
    assert ads is not None and ads.tcf is not None
    assert ads.tcf.purposes == (1, 2, 3, 4, 7)
    assert ads.tcf_vendors(cat.recipients) == frozenset({3001})
    assert cat.tcf is not None and cat.tcf.cmp_id == 4094


def test_legitimate_interest_is_refused_for_purposes_1_and_3_to_6() -> None:
    for purpose in (1, 3, 4, 5, 6):

        def change(data: dict[str, Any], p: int = purpose) -> None:
            permission(data, "fraud")["tcf"] = {"legitimate_interest_purposes": [p]}

        assert "cannot rest on legitimate interest" in rejected(change)


def test_purpose_and_special_feature_ids_must_exist() -> None:
    assert "less than or equal to 11" in rejected(
        lambda d: permission(d, "ads").update(tcf={"purposes": [12]})
    )
    assert "less than or equal to 2" in rejected(
        lambda d: permission(d, "ads").update(tcf={"special_features": [3]})
    )


def test_consent_signals_need_a_consent_permission() -> None:
    assert "consent signals" in rejected(
        lambda d: permission(d, "fraud").update(tcf={"purposes": [2]})
    )
    assert "needs a legitimate_interest permission" in rejected(
        lambda d: permission(d, "ads").update(tcf={"legitimate_interest_purposes": [2]})
    )


def test_consent_mode_ad_and_analytics_types_need_consent() -> None:
    message = rejected(lambda d: permission(d, "orders").update(consent_mode=["ad_storage"]))
    assert "can only be granted by consent" in message


def test_a_consent_mode_type_is_listed_once() -> None:
    assert "listed twice" in rejected(
        lambda d: permission(d, "ads").update(consent_mode=["ad_storage", "ad_storage"])
    )


def test_an_unknown_consent_mode_type_is_refused() -> None:
    assert "consent_mode" in rejected(
        lambda d: permission(d, "ads").update(consent_mode=["cookies"])
    )


def test_a_mapping_needs_the_catalogue_tcf_settings() -> None:
    assert "no 'tcf' settings" in rejected(lambda d: d.pop("tcf"))


def test_a_vendor_must_be_a_recipient_the_notice_names() -> None:
    message = rejected(lambda d: permission(d, "ads").update(tcf={"purposes": [2], "vendors": [9]}))
    assert "not the gvl_id of any of its recipients" in message


def test_two_recipients_cannot_share_a_gvl_id() -> None:
    assert "same gvl_id" in rejected(lambda d: d["recipients"]["carrier"].update(gvl_id=3001))


def test_the_policy_version_cannot_predate_tcf_2_2() -> None:
    assert "greater than or equal to 4" in rejected(lambda d: d["tcf"].update(tcf_policy_version=3))


def test_the_demo_catalogue_grants_produce_policy_clean_strings() -> None:
    cat = load_catalogue(MARKETPLACE)

    class Granted:
        def __init__(self, pid: str, basis: LegalBasis) -> None:
            self.id = pid
            self.state = "granted" if basis is LegalBasis.CONSENT else "default"
            self.effective = True
            self.source: str | None = "web"
            self.updated_at: datetime | None = NOW

    everything = [Granted(p.id, p.legal_basis) for p in cat.permissions]
    tc = tc_string(cat, everything, now=NOW)
    assert tc is not None
    assert tc.vendor_consents == frozenset({3101, 3102, 3103})
    assert tc.purposes_li_transparency == frozenset({10})
    assert [i for i in validate_tc_string(tc, now=NOW) if i.severity == "error"] == []
    # Mesurine (analytics) may not use the advertising purposes; the ad networks may not
    # measure content or personalise it.
    barred = {r.purpose_id: r.vendors for r in tc.publisher_restrictions}
    assert barred[2] == frozenset({3103}) and barred[8] == frozenset({3101, 3102})
    assert barred[5] == frozenset({3101, 3102, 3103})
    assert set(consent_mode(cat, everything).values()) == {"granted"}
