"""Consent Mode's ad_user_data / ad_personalization follow the permissions that share with ad
networks: the demo catalogue over the API, and the catalogue validator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.catalogue_io import CatalogueError, parse_catalogue
from consentry.config import Settings
from support import TEST_SECRET, bearer

MARKETPLACE = Path(__file__).resolve().parents[2] / "catalogues" / "marketplace.yaml"
SID = "demo-consent-mode-1"


@pytest.fixture
def marketplace(sqlite_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(database_url=sqlite_url, catalogue=MARKETPLACE, jwt_secret=TEST_SECRET)
    container: Container = bootstrap(settings)
    key = bearer(container.keys.create(["subjects:read", "subjects:write"]))
    with TestClient(create_app(container)) as client:
        yield client, key
    container.close()


def _set(client: TestClient, key: dict[str, str], pid: str, state: str) -> None:
    catalog = client.get("/v1/catalog").json()["permissions"]
    shown = next(p["notice_version"] for p in catalog if p["id"] == pid)
    response = client.put(
        f"/v1/subjects/{SID}/permissions/{pid}",
        json={"state": state, "notice_version": shown},
        headers=key,
    )
    assert response.status_code == 200, response.text


def test_first_party_ads_never_grant_ad_user_data_once_sharing_is_withdrawn(
    marketplace: tuple[TestClient, dict[str, str]],
) -> None:
    client, key = marketplace
    _set(client, key, "ads.personalised", "granted")
    _set(client, key, "sharing.ad_partners", "granted")
    shared = client.get(f"/v1/subjects/{SID}/signals", headers=key).json()["consent_mode"]
    assert shared["ad_user_data"] == shared["ad_personalization"] == "granted"

    _set(client, key, "sharing.ad_partners", "denied")
    mode = client.get(f"/v1/subjects/{SID}/signals", headers=key).json()["consent_mode"]
    assert mode["ad_user_data"] == "denied"
    assert mode["ad_personalization"] == "denied"
    assert mode["ad_storage"] == "granted"  # our own ads on our own pages still may store


def _with_first_party_ad_user_data() -> str:
    data: dict[str, Any] = yaml.safe_load(MARKETPLACE.read_text(encoding="utf-8"))
    perm = next(p for p in data["permissions"] if p["id"] == "ads.personalised")
    perm["consent_mode"] = ["ad_storage", "ad_user_data"]
    return yaml.safe_dump(data, allow_unicode=True)


def test_the_catalogue_refuses_ad_user_data_from_a_first_party_only_permission() -> None:
    with pytest.raises(CatalogueError, match="none of its recipients is an ad_network"):
        parse_catalogue(_with_first_party_ad_user_data())


def test_the_demo_catalogue_maps_ad_user_data_only_from_sharing_permissions() -> None:
    catalogue = parse_catalogue(MARKETPLACE.read_text(encoding="utf-8"))
    granting = {
        perm.id
        for perm in catalogue.permissions
        if {"ad_user_data", "ad_personalization"} & {t.value for t in perm.consent_mode}
    }
    assert granting == {"sharing.ad_partners", "tracking.cross_app"}
