"""Pure part of ``consentry verify-site``: what a consent state allows, and which observed
requests, cookies and storage writes it does not.

A request to the site's own host is first-party and not judged here (the server's own cookies
are, by name). A request to any other host is traced to a recipient by the catalogue's
``domains:``; it is allowed while some permission naming that recipient is allowed. A host no
recipient claims is a violation in every state: the catalogue (and so the notice) does not name
who receives the data. A cookie or storage key is traced to permissions by ``cookies:``; it is
allowed while one of them is; one no permission declares is a violation unless it is consentry's
own (the device cookie and the page's session), since nothing shows it is essential.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_vocabulary import LegalBasis
from consentry.storefront.config import no_choice

# consentry's own cookies: the consent record itself (exempt: it stores the choice) and the
# Permissions page's session and forms.
OWN_COOKIES = frozenset(
    {"consentry_device", "consentry_session", "consentry_flash", "consentry_login"}
)


def without_consent(catalogue: Catalogue) -> frozenset[str]:
    """Permissions in effect for a visitor who has not chosen (or refused all): contract, legal
    obligation, legitimate interest, and any consent default granted everywhere ("*")."""
    return frozenset(row.id for row in no_choice(catalogue, None) if row.effective)


def everything(catalogue: Catalogue) -> frozenset[str]:
    return frozenset(p.id for p in catalogue.permissions)


def only(catalogue: Catalogue, permission_id: str) -> frozenset[str]:
    return without_consent(catalogue) | {permission_id}


def without_sale_or_sharing(catalogue: Catalogue) -> frozenset[str]:
    """Accept all, then Global Privacy Control: everything but sale, sharing and tracking."""
    return frozenset(
        p.id
        for p in catalogue.permissions
        if not (p.sale_or_sharing and p.legal_basis is LegalBasis.CONSENT)
    )


@dataclass(frozen=True, slots=True)
class Observation:
    """One thing the browser did: ``kind`` is request, cookie (set by a script or a response)
    or storage (a localStorage / sessionStorage write); ``name`` the URL or the key."""

    kind: str
    name: str
    page: str
    origin: str = ""  # for a request: its host


@dataclass(frozen=True, slots=True)
class Violation:
    scenario: str
    phase: str
    kind: str
    name: str
    page: str
    why: str

    def line(self) -> str:
        return (
            f"[{self.scenario} / {self.phase}] {self.kind} {self.name} on {self.page}: {self.why}"
        )


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def judge(
    catalogue: Catalogue,
    allowed: frozenset[str],
    site_host: str,
    observations: Iterable[Observation],
    *,
    scenario: str,
    phase: str,
) -> list[Violation]:
    out: list[Violation] = []
    seen: set[tuple[str, str]] = set()
    for obs in observations:
        key = (obs.kind, obs.name if obs.kind != "request" else obs.origin + obs.name)
        if key in seen:
            continue
        seen.add(key)
        why = _why(catalogue, allowed, site_host, obs)
        if why is not None:
            out.append(Violation(scenario, phase, obs.kind, obs.name, obs.page, why))
    return out


def _why(
    catalogue: Catalogue, allowed: frozenset[str], site_host: str, obs: Observation
) -> str | None:
    if obs.kind == "request":
        if not obs.name.startswith(("http:", "https:")):
            return None
        host = host_of(obs.name)
        if host == site_host:
            return None
        recipient = catalogue.recipient_of_host(host)
        if recipient is None:
            return f"third-party domain {host} maps to no recipient in the catalogue"
        perms = [p.id for p in catalogue.permissions if recipient in p.recipients]
        if not allowed.intersection(perms):
            return f"goes to {recipient}, allowed only by {', '.join(perms)}, none allowed here"
        return None
    if obs.name in OWN_COOKIES:
        return None
    owners = catalogue.permissions_of_storage(obs.name)
    if not owners:
        return "declared by no permission's cookies: (not shown to be essential)"
    if not allowed.intersection(owners):
        return f"belongs to {', '.join(owners)}, none allowed here"
    return None


def unmapped_domains(
    catalogue: Catalogue, site_host: str, observations: Iterable[Observation]
) -> list[str]:
    hosts = {
        host_of(o.name)
        for o in observations
        if o.kind == "request" and o.name.startswith(("http:", "https:"))
    }
    return sorted(h for h in hosts if h != site_host and catalogue.recipient_of_host(h) is None)
