"""The ISO/IEC TS 27560 fields a receipt carries beyond the core record: processing method,
storage and processing locations, retention, geographic restrictions, privacy rights, the
supervisory authority, and per-item details of the personal data and purposes.

Names follow the W3C DPV guide "Consent Records and Receipts as per ISO/IEC TS 27560:2023"
(its table of ISO 27560, GDPR and DPV terms), in snake case. Everything is derived from the
catalogue, so a receipt says no more than the notice did. Pure.
"""

from __future__ import annotations

from typing import Any

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.catalogue_vocabulary import LegalBasis, RecipientKind

# Supervisory authorities of the countries consentry's catalogues are commonly written for; any
# other country gets a generic description.
_AUTHORITIES = {
    "BE": "Autorité de protection des données / Gegevensbeschermingsautoriteit",
    "DE": "Die Bundesbeauftragte für den Datenschutz und die Informationsfreiheit",
    "FR": "Commission nationale de l'informatique et des libertés (CNIL)",
    "IE": "Data Protection Commission",
    "NL": "Autoriteit Persoonsgegevens",
    "GB": "Information Commissioner's Office",
}
# Purposes whose processing builds a profile of the customer (GDPR Art. 4(4)).
_PROFILING = frozenset({"advertising", "recommendations", "tracking", "personalisation"})


def processing_locations(catalogue: Catalogue, perm: Permission) -> list[str]:
    """Where the data is processed: the controller's own country and each recipient's."""
    countries = {catalogue.controller.country}
    countries.update(catalogue.recipients[r].country for r in perm.recipients)
    return sorted(countries)


def pii_information(catalogue: Catalogue, perm: Permission, locale: str) -> list[dict[str, Any]]:
    return [
        {
            "pii_type": name,
            "pii_attribute_id": f"{perm.id}/{name}",
            "label": catalogue.text(catalogue.categories[name].label, locale),
            # The permission is granted or refused as a whole: every category it names is
            # needed for its purpose, none is an optional extra.
            "pii_optional": False,
            "sensitive": catalogue.categories[name].sensitive,
            "sensitive_pii_category": catalogue.categories[name].sensitive,
            "special_pii_category": catalogue.categories[name].sensitive,
        }
        for name in perm.categories
    ]


def purposes(catalogue: Catalogue, perm: Permission, locale: str) -> list[dict[str, Any]]:
    return [
        {
            "purpose_id": perm.purpose,
            "purpose": catalogue.text(catalogue.purposes[perm.purpose].label, locale),
            "purpose_type": perm.purpose.split(".", 1)[0],
        }
    ]


def _processing_method(catalogue: Catalogue, perm: Permission) -> list[str]:
    methods = ["collect", "store", "use"]
    if any(catalogue.recipients[r].kind is not RecipientKind.CONTROLLER for r in perm.recipients):
        methods.append("disclose")
    if any(catalogue.recipients[r].outside_eea for r in perm.recipients):
        methods.append("transfer")
    if perm.purpose.split(".", 1)[0] in _PROFILING:
        methods.append("profiling")
    return methods


def _retention(perm: Permission) -> dict[str, Any]:
    if perm.legal_basis is LegalBasis.CONSENT:
        held = "while this consent is in force: withdrawing it stops the processing"
    elif perm.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        held = "until you object, or the purpose no longer needs it"
    else:
        held = f"as long as the {perm.legal_basis.value.replace('_', ' ')} requires"
    return {
        "data": held,
        "erasure": "on request, by destroying the key that seals your personal fields",
        "record": "this record is kept as proof of the choice (GDPR Art. 7(1))",
    }


def _geographic_restrictions(catalogue: Catalogue, perm: Permission) -> list[dict[str, Any]]:
    out = []
    for rid in perm.recipients:
        recipient = catalogue.recipients[rid]
        if recipient.outside_eea:
            out.append(
                {
                    "party_id": rid,
                    "country": recipient.country,
                    "restriction": "transfer outside the EEA (GDPR Chapter V)",
                }
            )
    return out


def _privacy_rights(contact: str, basis: LegalBasis) -> list[dict[str, str]]:
    page = "on your Permissions page (/permissions)"
    rights = [
        {"right": "access", "how": f"download your data {page}, or write to {contact}"},
        {"right": "portability", "how": f"download your data as JSON or CSV {page}"},
        {"right": "erasure", "how": f"delete your data {page}, or write to {contact}"},
        {"right": "rectification", "how": f"write to {contact}"},
    ]
    if basis is LegalBasis.CONSENT:
        rights.append({"right": "withdraw_consent", "how": f"switch it off {page}"})
    if basis is LegalBasis.LEGITIMATE_INTEREST:
        rights.append({"right": "object", "how": f"object {page}"})
    rights.append({"right": "complaint", "how": "to the supervisory authority (authority_party)"})
    return rights


def processing_extras(catalogue: Catalogue, perm: Permission) -> dict[str, Any]:
    """The receipt's further processing fields for ``perm``."""
    controller = catalogue.controller
    return {
        "processing_method": _processing_method(catalogue, perm),
        "storage_locations": processing_locations(catalogue, perm),
        "retention_period": _retention(perm),
        "geographic_restrictions": _geographic_restrictions(catalogue, perm),
        "privacy_rights": _privacy_rights(controller.contact, perm.legal_basis),
        "authority_party": {
            "party_name": _AUTHORITIES.get(
                controller.country, f"the data protection authority of {controller.country}"
            ),
            "party_country": controller.country,
            "party_role": "supervisory_authority",
        },
    }
