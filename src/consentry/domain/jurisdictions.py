"""Jurisdictions: which defaults apply to a subject.

A subject's jurisdiction is an ISO 3166 code (``BE``), or a sub-division (``US-CA``). Defaults in
the catalogue are looked up by exact code, then by region, then ``*``.
"""

from __future__ import annotations

EEA = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()
    + ["IS", "LI", "NO"]
)
# Regions where consent-based processing is opt-in: a consent default there must be "denied".
PROTECTIVE_REGIONS = frozenset({"EEA", "EU", "UK"})

FALLBACK = "*"


def region_of(jurisdiction: str | None) -> str:
    if not jurisdiction:
        return FALLBACK
    code = jurisdiction.upper()
    if code in EEA or code in {"EU", "EEA"}:
        return "EEA"
    if code in {"GB", "UK"}:
        return "UK"
    return code


def lookup_order(jurisdiction: str | None) -> tuple[str, ...]:
    """Keys to try in a permission's ``defaults``, most specific first."""
    if not jurisdiction:
        return (FALLBACK,)
    code = jurisdiction.upper()
    region = region_of(code)
    keys = [code]
    if region != code:
        keys.append(region)
    if region == "EEA":
        keys.append("EU")
    if "-" in code:
        keys.append(code.split("-", 1)[0])
    keys.append(FALLBACK)
    return tuple(dict.fromkeys(keys))
