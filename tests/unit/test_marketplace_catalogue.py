"""The demo catalogue ``catalogues/marketplace.yaml``: valid, complete, lawful and readable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from consentry.catalogue_io import load_catalogue
from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.catalogue_vocabulary import (
    DefaultState,
    LegalBasis,
    Localized,
    PermissionGroup,
)
from consentry.domain.jurisdictions import lookup_order

CATALOGUE_PATH = Path(__file__).resolve().parents[2] / "catalogues" / "marketplace.yaml"

REQUIRED_PERMISSIONS: dict[str, LegalBasis] = {
    "location.precise": LegalBasis.CONSENT,
    "location.approximate": LegalBasis.CONSENT,
    "camera.visual_search": LegalBasis.CONSENT,
    "photos.reviews": LegalBasis.CONSENT,
    "contacts.invite": LegalBasis.CONSENT,
    "microphone.voice_search": LegalBasis.CONSENT,
    "notifications.order_updates": LegalBasis.CONSENT,
    "tracking.cross_app": LegalBasis.CONSENT,
    "clipboard.coupons": LegalBasis.CONSENT,
    "recommendations.personalised": LegalBasis.CONSENT,
    "ads.personalised": LegalBasis.CONSENT,
    "marketing.email": LegalBasis.CONSENT,
    "marketing.push": LegalBasis.CONSENT,
    "marketing.sms": LegalBasis.CONSENT,
    "analytics.product": LegalBasis.CONSENT,
    "sharing.ad_partners": LegalBasis.CONSENT,
    "sale.data_buyers": LegalBasis.CONSENT,
    "transfer.outside_eea": LegalBasis.CONSENT,
    "orders.fulfilment": LegalBasis.CONTRACT,
    "fraud.prevention": LegalBasis.LEGITIMATE_INTEREST,
    "tax.records": LegalBasis.LEGAL_OBLIGATION,
    "service.product_improvement": LegalBasis.LEGITIMATE_INTEREST,
}

SHARING_PERMISSIONS = ("sharing.ad_partners", "sale.data_buyers", "transfer.outside_eea")

# Subjects in protective jurisdictions: EEA members and the United Kingdom.
PROTECTED_SUBJECTS = ("BE", "FR", "NL", "DE", "GB")

# How the English notices name the countries of non-EEA recipients.
COUNTRY_NAMES_EN: dict[str, str] = {
    "US": "United States",
    "SG": "Singapore",
    "GB": "United Kingdom",
    "CH": "Switzerland",
}

ALLOWED_DOMAINS = frozenset({"example.com", "example.org"})

# A sentence ends with . ! ? or … followed by whitespace or the end of the text, so that
# "example.com" or "e-mail" do not count.
_SENTENCE_END = re.compile(r"[.!?…](?=\s|$)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_URL_HOST = re.compile(r"https?://([A-Za-z0-9.-]+)")


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(CATALOGUE_PATH)


def _permission(catalogue: Catalogue, permission_id: str) -> Permission:
    perm = catalogue.permission(permission_id)
    assert perm is not None, f"missing permission {permission_id!r}"
    return perm


def _consent_permissions(catalogue: Catalogue) -> list[Permission]:
    return [p for p in catalogue.permissions if p.legal_basis is LegalBasis.CONSENT]


def _resolve_default(perm: Permission, jurisdiction: str) -> DefaultState | None:
    for key in lookup_order(jurisdiction):
        if key in perm.defaults:
            return perm.defaults[key]
    return None


def _all_texts(catalogue: Catalogue) -> Iterator[tuple[str, Localized]]:
    """Every user-facing localized text of the catalogue, with where it comes from."""
    for name, category in catalogue.categories.items():
        yield f"categories.{name}.label", category.label
    for name, purpose in catalogue.purposes.items():
        yield f"purposes.{name}.label", purpose.label
    for name, recipient in catalogue.recipients.items():
        if recipient.description is not None:
            yield f"recipients.{name}.description", recipient.description
    for perm in catalogue.permissions:
        yield f"{perm.id}.notice.title", perm.notice.title
        yield f"{perm.id}.notice.text", perm.notice.text
        if perm.notice.change_summary is not None:
            yield f"{perm.id}.notice.change_summary", perm.notice.change_summary
    for dev in catalogue.device_permissions:
        yield f"device.{dev.id}.title", dev.title
        yield f"device.{dev.id}.text", dev.text


def _titles(catalogue: Catalogue) -> Iterator[tuple[str, Localized]]:
    for perm in catalogue.permissions:
        yield perm.id, perm.notice.title
    for dev in catalogue.device_permissions:
        yield f"device.{dev.id}", dev.title


def test_catalogue_loads_and_validates(catalogue: Catalogue) -> None:
    assert catalogue.controller.name.startswith("Example Marketplace")
    assert catalogue.controller.contact == "privacy@example.com"
    assert catalogue.locales == ("en", "fr", "nl", "de")
    assert catalogue.default_locale == "en"


def test_catalogue_has_at_least_twenty_permissions(catalogue: Catalogue) -> None:
    assert len(catalogue.permissions) >= 20


@pytest.mark.parametrize(("permission_id", "legal_basis"), sorted(REQUIRED_PERMISSIONS.items()))
def test_required_permission_exists_with_its_legal_basis(
    catalogue: Catalogue, permission_id: str, legal_basis: LegalBasis
) -> None:
    assert _permission(catalogue, permission_id).legal_basis is legal_basis


def test_permissions_sharing_with_third_parties_are_in_the_sharing_group(
    catalogue: Catalogue,
) -> None:
    for permission_id in SHARING_PERMISSIONS:
        assert _permission(catalogue, permission_id).group is PermissionGroup.SHARING


def test_fulfilment_includes_a_delivery_carrier(catalogue: Catalogue) -> None:
    recipients = _permission(catalogue, "orders.fulfilment").recipients
    assert "parcelwise" in recipients
    assert catalogue.recipients["parcelwise"].kind.value == "processor"


@pytest.mark.parametrize("jurisdiction", PROTECTED_SUBJECTS)
def test_every_consent_permission_defaults_to_denied_in_protective_jurisdictions(
    catalogue: Catalogue, jurisdiction: str
) -> None:
    for perm in _consent_permissions(catalogue):
        assert _resolve_default(perm, jurisdiction) is DefaultState.DENIED, perm.id


def test_every_consent_permission_falls_back_to_denied(catalogue: Catalogue) -> None:
    for perm in _consent_permissions(catalogue):
        assert perm.defaults.get("*") is DefaultState.DENIED, perm.id


def test_only_sale_defaults_to_granted_and_only_in_california(catalogue: Catalogue) -> None:
    granted = {
        (perm.id, key)
        for perm in catalogue.permissions
        for key, state in perm.defaults.items()
        if state is DefaultState.GRANTED
    }
    assert granted == {("sale.data_buyers", "US-CA")}
    assert _resolve_default(_permission(catalogue, "sale.data_buyers"), "US-CA") is (
        DefaultState.GRANTED
    )


def test_non_consent_permissions_have_no_defaults(catalogue: Catalogue) -> None:
    for perm in catalogue.permissions:
        if perm.legal_basis is not LegalBasis.CONSENT:
            assert perm.defaults == {}, perm.id


def test_titles_are_unique_within_each_locale(catalogue: Catalogue) -> None:
    for locale in catalogue.locales:
        seen: dict[str, str] = {}
        for where, title in _titles(catalogue):
            key = title[locale].strip().casefold()
            assert key not in seen, f"{locale}: {where} repeats the title of {seen[key]}"
            seen[key] = where


def test_titles_are_short(catalogue: Catalogue) -> None:
    for where, title in _titles(catalogue):
        for locale in catalogue.locales:
            words = title[locale].split()
            assert 1 <= len(words) <= 6, f"{where} [{locale}]: {title[locale]!r}"
            assert not _SENTENCE_END.search(title[locale]), f"{where} [{locale}]"


def test_every_text_is_present_and_at_most_two_sentences(catalogue: Catalogue) -> None:
    for where, texts in _all_texts(catalogue):
        for locale in catalogue.locales:
            text = texts.get(locale, "").strip()
            assert text, f"{where} [{locale}] is empty"
            sentences = len(_SENTENCE_END.findall(text))
            assert sentences <= 2, f"{where} [{locale}] has {sentences} sentences: {text!r}"


def test_every_recipient_has_a_localized_description(catalogue: Catalogue) -> None:
    for name, recipient in catalogue.recipients.items():
        assert recipient.description is not None, name
        assert set(catalogue.locales) <= set(recipient.description), name


def test_permissions_sharing_outside_the_eea_name_the_country_in_english(
    catalogue: Catalogue,
) -> None:
    checked = 0
    for perm in catalogue.permissions:
        text = perm.notice.text["en"]
        for name in perm.recipients:
            recipient = catalogue.recipients[name]
            if not recipient.outside_eea:
                continue
            checked += 1
            assert recipient.country in COUNTRY_NAMES_EN, (
                f"add an English name for {recipient.country} to COUNTRY_NAMES_EN"
            )
            assert COUNTRY_NAMES_EN[recipient.country] in text, (perm.id, name)
            assert recipient.name in text, (perm.id, name)
    assert checked > 0, "the catalogue should exercise transfers outside the EEA"


def test_transfer_outside_eea_goes_to_a_non_eea_recipient(catalogue: Catalogue) -> None:
    perm = _permission(catalogue, "transfer.outside_eea")
    assert all(catalogue.recipients[name].outside_eea for name in perm.recipients)


def test_device_categories_match_declared_device_permissions(catalogue: Catalogue) -> None:
    devices = {dev.id: dev for dev in catalogue.device_permissions}
    for name, category in catalogue.categories.items():
        if category.device is None:
            continue
        dev = devices.get(category.device.permission)
        assert dev is not None, f"{name}: no device permission {category.device.permission!r}"
        assert set(category.device.allows) <= set(dev.values), name


def test_device_permission_texts_point_to_the_phone_settings(catalogue: Catalogue) -> None:
    for dev in catalogue.device_permissions:
        assert "settings" in dev.text["en"], dev.id


def test_notice_versions_exercise_compatible_and_material_changes(catalogue: Catalogue) -> None:
    notices = [perm.notice for perm in catalogue.permissions]
    compatible = [n for n in notices if n.version != "1" and n.compatible_versions]
    material = [n for n in notices if n.version != "1" and not n.compatible_versions]
    assert compatible, "expected a non-material update that keeps earlier grants"
    assert material, "expected a material update that asks again"
    assert all(n.change_summary is not None for n in material)
    assert all(n.accepts("1") for n in compatible)
    assert not any(n.accepts("1") or n.accepts("2") for n in material)


def test_file_uses_only_example_domains() -> None:
    raw = CATALOGUE_PATH.read_text(encoding="utf-8")
    hosts = set(_EMAIL.findall(raw)) | set(_URL_HOST.findall(raw))
    assert hosts, "the controller contact should be an e-mail address"
    for host in hosts:
        host = host.lower().rstrip(".")
        assert any(host == d or host.endswith("." + d) for d in ALLOWED_DOMAINS), host
