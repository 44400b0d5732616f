"""What ``/consentry.js`` is told before it runs: the site's CMP identity, the Consent Mode
defaults per region (computed by the server's own mapping) and what each permission stores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_vocabulary import DefaultState, LegalBasis
from consentry.domain.jurisdictions import EEA, FALLBACK, lookup_order
from consentry.standards.mapping import consent_mode


@dataclass(frozen=True, slots=True)
class _Default:
    """A visitor who has not chosen yet, in one jurisdiction (a ``PermissionStatus``)."""

    id: str
    state: str
    effective: bool
    source: str | None = None
    updated_at: datetime | None = None


def no_choice(catalogue: Catalogue, jurisdiction: str | None) -> list[_Default]:
    rows = []
    for perm in catalogue.permissions:
        if perm.legal_basis is LegalBasis.CONSENT:
            key = next((k for k in lookup_order(jurisdiction) if k in perm.defaults), FALLBACK)
            effective = perm.defaults.get(key) is DefaultState.GRANTED
        else:
            effective = True  # contract, legal obligation; legitimate interest until objected
        rows.append(_Default(perm.id, "default", effective))
    return rows


def _gtag_regions(key: str) -> list[str]:
    if key in ("EEA", "EU"):
        return sorted(EEA)
    if key == "UK":
        return ["GB"]
    return [key]


def consent_mode_defaults(catalogue: Catalogue) -> list[dict[str, Any]]:
    """``gtag('consent', 'default', …)`` arguments: one per region the catalogue's defaults
    name (most specific first, as gtag prefers), then the fallback without ``region``. Each is
    what ``GET /v1/subjects/{sid}/signals`` answers for a visitor there who has not chosen."""
    keys = sorted({k for p in catalogue.permissions for k in p.defaults if k != FALLBACK})
    out: list[dict[str, Any]] = []
    for key in sorted(keys, key=lambda k: ("-" not in k, k)):
        sample = _gtag_regions(key)[0]
        out.append(
            {**consent_mode(catalogue, no_choice(catalogue, sample)), "region": _gtag_regions(key)}
        )
    out.append(consent_mode(catalogue, no_choice(catalogue, None)))
    return out


def script_config(
    catalogue: Catalogue, *, cmp_id: int | None, gdpr_applies: bool
) -> dict[str, Any]:
    tcf = catalogue.tcf
    return {
        "cmpId": cmp_id if cmp_id is not None else (tcf.cmp_id if tcf else 0),
        "cmpVersion": tcf.cmp_version if tcf else 1,
        "gvl": tcf.vendor_list_version if tcf else 0,
        "policy": tcf.tcf_policy_version if tcf else 5,
        "gdpr": gdpr_applies,
        "defaults": consent_mode_defaults(catalogue),
        "storage": {p.id: list(p.cookies) for p in catalogue.permissions if p.cookies},
    }
