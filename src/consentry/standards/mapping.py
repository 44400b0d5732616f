"""From a subject's permissions to the signals ad tech reads: TC string, GPP and Consent Mode.

Pure, but unlike the codecs it needs the catalogue model (pydantic), so ``consentry.standards``
does not import it: use ``consentry.standards.mapping``.

The catalogue says what each permission means in each standard (``Permission.tcf``,
``Permission.consent_mode``, ``Recipient.gvl_id``); the subject's permission states say which of
those meanings hold now. The rule that matters: a consent signal (a TCF consent bit, a
special-feature opt-in, a Consent Mode type that needs consent) is set only by an explicit grant
that is in force (state "granted" and effective). A jurisdiction default never sets one, and
neither does an expired grant or one given on an outdated notice.

TCF is vendor x purpose, but the string only carries vendor consents and purpose consents: a
vendor with consent and a purpose with consent would combine even when the subject never granted
that pair. Each string therefore carries publisher restrictions ("purpose flatly not allowed")
for every signalled vendor and purpose that no allowed permission pairs. Special-feature opt-ins
cannot be restricted per vendor; map them only on permissions whose vendors may all use them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.catalogue_signals import ConsentModeType
from consentry.domain.catalogue_vocabulary import LegalBasis, RecipientKind

from .gpp import GPPSection, GPPString, encode_gpp
from .tcf_codec import encode_tc_string
from .tcf_model import PublisherRestriction, RestrictionType, TCString
from .usnat import UsNat

__all__ = [
    "PermissionStatus",
    "Signals",
    "consent_mode",
    "explicit_grant",
    "gpp_string",
    "honoured_gpc",
    "signals",
    "tc_string",
    "usnat_section",
]

# usnat opt-out classes, by the purpose's first dotted part and the recipients' kinds.
# "Sharing" is the CCPA term: disclosure to a third party for cross-context behavioural ads.
THIRD_PARTY_KINDS = frozenset(
    {RecipientKind.PARTNER, RecipientKind.AD_NETWORK, RecipientKind.DATA_BUYER}
)


def _top(perm: Permission) -> str:
    return perm.purpose.split(".", 1)[0]


def _kinds(catalogue: Catalogue, perm: Permission) -> set[RecipientKind]:
    return {catalogue.recipients[r].kind for r in perm.recipients}


def is_sale(catalogue: Catalogue, perm: Permission) -> bool:
    return _top(perm) == "sale" or RecipientKind.DATA_BUYER in _kinds(catalogue, perm)


def is_sharing(catalogue: Catalogue, perm: Permission) -> bool:
    top = _top(perm)
    third_party = bool(_kinds(catalogue, perm) & THIRD_PARTY_KINDS)
    return top in ("sharing", "tracking") or (top == "advertising" and third_party)


def is_targeted_advertising(catalogue: Catalogue, perm: Permission) -> bool:
    return _top(perm) in ("advertising", "sharing", "tracking")


# usnat values: notices 1 = given; opt-outs 1 = opted out, 2 = did not opt out; 0 = n/a.
_YES, _NO, _NA = 1, 2, 0


class PermissionStatus(Protocol):
    """What the mapping needs of one permission's state (``services.consents.PermissionView``)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> str: ...  # granted | denied | default
    @property
    def effective(self) -> bool: ...
    @property
    def source(self) -> str | None: ...
    @property
    def updated_at(self) -> datetime | None: ...


def explicit_grant(status: PermissionStatus) -> bool:
    """The subject said yes, and that yes still holds. The only thing that sets a consent bit."""
    return status.state == "granted" and status.effective


def _allows(perm: Permission, status: PermissionStatus) -> bool:
    if perm.legal_basis is LegalBasis.CONSENT:
        return explicit_grant(status)
    return status.effective  # contract, legal obligation; legitimate interest until objected


def _pairs(
    catalogue: Catalogue, statuses: Iterable[PermissionStatus]
) -> list[tuple[Permission, PermissionStatus]]:
    by_id = {p.id: p for p in catalogue.permissions}
    return [(by_id[s.id], s) for s in statuses if s.id in by_id]


def _day(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


# ------------------------------------------------------------------------------------- TCF


def tc_string(
    catalogue: Catalogue,
    statuses: Iterable[PermissionStatus],
    *,
    now: datetime,
    language: str | None = None,
) -> TCString | None:
    """The subject's TC string, or None when the catalogue has no ``tcf`` settings.

    Created and LastUpdated are the UTC day of the latest choice on a TCF-mapped permission
    (today when there is none), as TCF 2.2 asks."""
    settings = catalogue.tcf
    if settings is None:
        return None
    consent_purposes: set[int] = set()
    consent_vendors: set[int] = set()
    special_features: set[int] = set()
    li_purposes: set[int] = set()
    li_vendors: set[int] = set()
    allowed: set[tuple[int, int]] = set()
    disclosed: set[int] = set()
    latest: datetime | None = None
    for perm in catalogue.permissions:
        disclosed |= perm.tcf_vendors(catalogue.recipients)
    for perm, status in _pairs(catalogue, statuses):
        mapping = perm.tcf
        if mapping is None:
            continue
        if status.updated_at is not None and (latest is None or status.updated_at > latest):
            latest = status.updated_at
        if not _allows(perm, status):
            continue
        vendors = perm.tcf_vendors(catalogue.recipients)
        if perm.legal_basis is LegalBasis.CONSENT:
            consent_purposes.update(mapping.purposes)
            special_features.update(mapping.special_features)
            consent_vendors |= vendors
            allowed.update((p, v) for p in mapping.purposes for v in vendors)
        elif perm.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
            li_purposes.update(mapping.legitimate_interest_purposes)
            li_vendors |= vendors
            allowed.update((p, v) for p in mapping.legitimate_interest_purposes for v in vendors)
    signalled = consent_vendors | li_vendors
    restrictions = []
    for purpose in sorted(consent_purposes | li_purposes):
        barred = frozenset(v for v in signalled if (purpose, v) not in allowed)
        if barred:
            restrictions.append(PublisherRestriction(purpose, RestrictionType.NOT_ALLOWED, barred))
    stamp = _day(latest or now)
    return TCString(
        created=stamp,
        last_updated=stamp,
        cmp_id=settings.cmp_id,
        cmp_version=settings.cmp_version,
        consent_screen=settings.consent_screen,
        consent_language=(language or catalogue.default_locale).upper(),
        vendor_list_version=settings.vendor_list_version,
        tcf_policy_version=settings.tcf_policy_version,
        is_service_specific=True,
        special_feature_optins=frozenset(special_features),
        purposes_consent=frozenset(consent_purposes),
        purposes_li_transparency=frozenset(li_purposes),
        publisher_cc=settings.publisher_cc or catalogue.controller.country,
        vendor_consents=frozenset(consent_vendors),
        vendor_legitimate_interests=frozenset(li_vendors),
        publisher_restrictions=tuple(restrictions),
        disclosed_vendors=frozenset(disclosed),
    )


# ------------------------------------------------------------------------------------- GPP


Classifier = Callable[[Catalogue, Permission], bool]


def _opt_out(
    catalogue: Catalogue, pairs: list[tuple[Permission, PermissionStatus]], kind: Classifier
) -> int:
    relevant = [status for perm, status in pairs if kind(catalogue, perm)]
    if not relevant:
        return _NA
    # Not happening for this subject (withdrawn, never granted where opt-in applies): opted out.
    return _NO if any(status.effective for status in relevant) else _YES


def honoured_gpc(statuses: Iterable[PermissionStatus]) -> bool:
    """Whether a Global Privacy Control signal is what set some current choice."""
    return any(status.source == "gpc" for status in statuses)


def usnat_section(
    catalogue: Catalogue, statuses: Iterable[PermissionStatus], *, gpc: bool
) -> UsNat:
    """The usnat (US national, v2) section. A class of processing the catalogue does not have
    is "not applicable"; one that does not happen for this subject counts as opted out. The
    sensitive-data fields are left "not applicable": the catalogue does not map categories to
    the 16 usnat sensitive-data kinds. The GPC sub-section is present only when ``gpc``."""
    pairs = _pairs(catalogue, statuses)

    def notice(kind: Classifier) -> int:
        return _YES if any(kind(catalogue, p) for p in catalogue.permissions) else _NA

    shares = any(_kinds(catalogue, p) & THIRD_PARTY_KINDS for p in catalogue.permissions)
    covered = catalogue.gpp.mspa_covered_transaction
    return UsNat(
        version=2,
        sharing_notice=_YES if shares else _NA,
        sale_opt_out_notice=notice(is_sale),
        sharing_opt_out_notice=notice(is_sharing),
        targeted_advertising_opt_out_notice=notice(is_targeted_advertising),
        sale_opt_out=_opt_out(catalogue, pairs, is_sale),
        sharing_opt_out=_opt_out(catalogue, pairs, is_sharing),
        targeted_advertising_opt_out=_opt_out(catalogue, pairs, is_targeted_advertising),
        mspa_covered_transaction=_YES if covered else _NO,
        mspa_opt_out_option_mode=_YES if covered else _NA,
        mspa_service_provider_mode=_NO if covered else _NA,
        gpc=True if gpc else None,
    )


def gpp_string(
    catalogue: Catalogue,
    statuses: Iterable[PermissionStatus],
    *,
    now: datetime,
    language: str | None = None,
    gpc: bool = False,
) -> GPPString:
    """tcfeuv2 (when the catalogue has TCF settings) and usnat."""
    items = list(statuses)
    sections: list[GPPSection] = [usnat_section(catalogue, items, gpc=gpc)]
    tc = tc_string(catalogue, items, now=now, language=language)
    if tc is not None:
        sections.append(tc)
    return GPPString(tuple(sections))


# ------------------------------------------------------------------------------ Consent Mode


def consent_mode(catalogue: Catalogue, statuses: Iterable[PermissionStatus]) -> dict[str, str]:
    """Google Consent Mode v2: every type "denied" unless a permission mapped to it allows it
    now (consent: an explicit grant in force; other bases: while effective)."""
    granted: set[ConsentModeType] = set()
    for perm, status in _pairs(catalogue, statuses):
        if perm.consent_mode and _allows(perm, status):
            granted.update(perm.consent_mode)
    return {t.value: "granted" if t in granted else "denied" for t in ConsentModeType}


# ----------------------------------------------------------------------------------- all three


@dataclass(frozen=True, slots=True)
class Signals:
    tcf: str | None
    gpp: str
    consent_mode: dict[str, str]


def signals(
    catalogue: Catalogue,
    statuses: Iterable[PermissionStatus],
    *,
    now: datetime,
    language: str | None = None,
    gpc: bool = False,
) -> Signals:
    """The three signals, encoded. ``gpc``: the subject's browser sent Global Privacy Control
    (on this request, or it set a current choice: see ``honoured_gpc``)."""
    items = list(statuses)
    tc = tc_string(catalogue, items, now=now, language=language)
    sections: list[GPPSection] = [usnat_section(catalogue, items, gpc=gpc)]
    if tc is not None:
        sections.append(tc)
    return Signals(
        tcf=encode_tc_string(tc) if tc is not None else None,
        gpp=encode_gpp(GPPString(tuple(sections))),
        consent_mode=consent_mode(catalogue, items),
    )
