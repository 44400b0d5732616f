"""The catalogue's web additions: ``domains:`` per recipient, ``cookies:`` per permission."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from consentry.catalogue_io import load_catalogue
from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_vocabulary import storage_matches
from support import MINI

MARKETPLACE = Path(__file__).resolve().parents[2] / "catalogues" / "marketplace.yaml"


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


def test_a_request_host_traces_to_the_recipient_whose_domain_covers_it() -> None:
    data = mini_data()
    data["recipients"]["adnet"]["domains"] = ["adnet.example", "cdn.adnet-static.example"]
    data["recipients"]["carrier"]["domains"] = ["track.adnet.example"]
    cat = Catalogue.model_validate(data)
    assert cat.recipient_of_host("adnet.example") == "adnet"
    assert cat.recipient_of_host("px.adnet.example") == "adnet"
    assert cat.recipient_of_host("ADNET.example.") == "adnet"
    assert cat.recipient_of_host("cdn.adnet-static.example") == "adnet"
    assert cat.recipient_of_host("track.adnet.example") == "carrier"  # the longest match
    assert cat.recipient_of_host("notadnet.example") is None
    assert cat.recipient_of_host("example") is None


def test_a_domain_listed_by_two_recipients_is_refused() -> None:
    def change(data: dict[str, Any]) -> None:
        data["recipients"]["adnet"]["domains"] = ["adnet.example"]
        data["recipients"]["buyer"]["domains"] = ["adnet.example"]

    assert "both list domain 'adnet.example'" in rejected(change)


@pytest.mark.parametrize(
    "domain", ["https://adnet.example", "Adnet.example", "adnet.example/", "-x.example", ""]
)
def test_a_domain_must_be_a_lower_case_host_name(domain: str) -> None:
    def change(data: dict[str, Any]) -> None:
        data["recipients"]["adnet"]["domains"] = [domain]

    assert "domains" in rejected(change)


def test_cookies_name_what_a_permission_may_store_with_prefix_patterns() -> None:
    data = mini_data()
    permission(data, "ads")["cookies"] = ["_adn_id", "adn_*"]
    permission(data, "recs")["cookies"] = ["_adn_id"]
    cat = Catalogue.model_validate(data)
    assert cat.permissions_of_storage("_adn_id") == ("recs", "ads")
    assert cat.permissions_of_storage("adn_seen") == ("ads",)
    assert cat.permissions_of_storage("session") == ()
    assert storage_matches("adn_*", "adn_") and not storage_matches("adn_*", "_adn")


@pytest.mark.parametrize("name", ["a b", "x=y", "a;b", "*x", ""])
def test_a_cookie_name_with_separators_or_a_leading_star_is_refused(name: str) -> None:
    def change(data: dict[str, Any]) -> None:
        permission(data, "ads")["cookies"] = [name]

    assert "cookies" in rejected(change)


def test_a_cookie_listed_twice_in_one_permission_is_refused() -> None:
    def change(data: dict[str, Any]) -> None:
        permission(data, "ads")["cookies"] = ["_adn_id", "_adn_id"]

    assert "listed twice in cookies" in rejected(change)


def test_the_demo_catalogue_names_the_ad_tech_domains_and_cookies() -> None:
    cat = load_catalogue(MARKETPLACE)
    for rid in ("adlytics", "bannerfield", "mesurine"):
        assert cat.recipient_of_host(f"{rid}.localhost") == rid
        assert cat.recipient_of_host(f"cdn.{rid}.example") == rid
    assert cat.permissions_of_storage("_msr_id") == ("analytics.product",)
    assert set(cat.permissions_of_storage("_adl_uid")) == {
        "tracking.cross_app",
        "sharing.ad_partners",
    }
    assert cat.permissions_of_storage("bnf_seen") == ("sharing.ad_partners",)
