"""Consent strings as JSON, both ways, for ``consentry tcf|gpp``.

JSON field names are the spec's field names in snake case (``cmp_id``, ``vendor_list_version``,
``purposes_consent`` ...); id sets are sorted lists, times ISO 8601 UTC.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from consentry.standards import (
    SECTION_NAMES,
    GPPString,
    PublisherRestriction,
    PublisherTC,
    RawSection,
    RestrictionType,
    TCString,
    UsNat,
)
from consentry.standards.tcf_model import ID_SET_FIELDS


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -------------------------------------------------------------------------- TC string <-> JSON


def tc_to_json(tc: TCString) -> dict[str, Any]:
    pub = tc.publisher_tc
    return {
        "version": tc.version,
        "created": _iso(tc.created),
        "last_updated": _iso(tc.last_updated),
        "cmp_id": tc.cmp_id,
        "cmp_version": tc.cmp_version,
        "consent_screen": tc.consent_screen,
        "consent_language": tc.consent_language,
        "vendor_list_version": tc.vendor_list_version,
        "tcf_policy_version": tc.tcf_policy_version,
        "is_service_specific": tc.is_service_specific,
        "use_non_standard_texts": tc.use_non_standard_texts,
        "special_feature_optins": sorted(tc.special_feature_optins),
        "purposes_consent": sorted(tc.purposes_consent),
        "purposes_li_transparency": sorted(tc.purposes_li_transparency),
        "purpose_one_treatment": tc.purpose_one_treatment,
        "publisher_cc": tc.publisher_cc,
        "vendor_consents": sorted(tc.vendor_consents),
        "vendor_legitimate_interests": sorted(tc.vendor_legitimate_interests),
        "publisher_restrictions": [
            {
                "purpose_id": r.purpose_id,
                "restriction_type": int(r.restriction_type),
                "vendors": sorted(r.vendors),
            }
            for r in tc.publisher_restrictions
        ],
        "disclosed_vendors": (
            sorted(tc.disclosed_vendors) if tc.disclosed_vendors is not None else None
        ),
        "publisher_tc": None
        if pub is None
        else {
            "purposes_consent": sorted(pub.purposes_consent),
            "purposes_li_transparency": sorted(pub.purposes_li_transparency),
            "num_custom_purposes": pub.num_custom_purposes,
            "custom_purposes_consent": sorted(pub.custom_purposes_consent),
            "custom_purposes_li_transparency": sorted(pub.custom_purposes_li_transparency),
        },
    }


class _Reader:
    """Typed access to a JSON object, with errors that name the field."""

    def __init__(self, data: Any, where: str, allowed: set[str], required: set[str]) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
        self.data, self.where = data, where

    def has(self, name: str) -> bool:
        return name in self.data

    def integer(self, name: str) -> int:
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{self.where}.{name}: expected an integer, got {value!r}")
        return value

    def flag(self, name: str) -> bool:
        value = self.data[name]
        if not isinstance(value, bool):
            raise ValueError(f"{self.where}.{name}: expected true or false, got {value!r}")
        return value

    def text(self, name: str) -> str:
        value = self.data[name]
        if not isinstance(value, str):
            raise ValueError(f"{self.where}.{name}: expected a string, got {value!r}")
        return value

    def ids(self, name: str) -> frozenset[int]:
        value = self.data[name]
        if not isinstance(value, list) or any(
            isinstance(i, bool) or not isinstance(i, int) for i in value
        ):
            raise ValueError(f"{self.where}.{name}: expected a list of integer ids")
        return frozenset(value)

    def time(self, name: str) -> datetime:
        text = self.text(name)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{self.where}.{name}: not an ISO 8601 time: {text!r}") from exc
        if moment.tzinfo is None:
            raise ValueError(f"{self.where}.{name}: give a time zone (e.g. 'Z'): {text!r}")
        return moment


_TC_FIELDS = {f.name for f in fields(TCString)}
_PUB_FIELDS = {f.name for f in fields(PublisherTC)}


def tc_from_json(data: Any) -> TCString:
    """The reverse of ``tc_to_json``; ``created``, ``last_updated``, ``cmp_id`` and
    ``vendor_list_version`` are required, other fields default as in ``TCString``."""
    r = _Reader(data, "TC string", _TC_FIELDS, {"created", "last_updated", "cmp_id"})
    if not r.has("vendor_list_version"):
        raise ValueError("TC string: missing field(s) vendor_list_version")
    kwargs: dict[str, Any] = {}
    for name in ("version", "cmp_id", "cmp_version", "consent_screen", "vendor_list_version"):
        if r.has(name):
            kwargs[name] = r.integer(name)
    if r.has("tcf_policy_version"):
        kwargs["tcf_policy_version"] = r.integer("tcf_policy_version")
    for name in ("created", "last_updated"):
        kwargs[name] = r.time(name)
    for name in ("consent_language", "publisher_cc"):
        if r.has(name):
            kwargs[name] = r.text(name)
    for name in ("is_service_specific", "use_non_standard_texts", "purpose_one_treatment"):
        if r.has(name):
            kwargs[name] = r.flag(name)
    for name in ID_SET_FIELDS:
        if r.has(name):
            kwargs[name] = r.ids(name)
    if r.has("disclosed_vendors") and data["disclosed_vendors"] is not None:
        kwargs["disclosed_vendors"] = r.ids("disclosed_vendors")
    if r.has("publisher_restrictions"):
        entries = data["publisher_restrictions"]
        if not isinstance(entries, list):
            raise ValueError("TC string.publisher_restrictions: expected a list")
        restrictions = []
        for index, entry in enumerate(entries):
            e = _Reader(
                entry,
                f"TC string.publisher_restrictions[{index}]",
                {"purpose_id", "restriction_type", "vendors"},
                {"purpose_id", "restriction_type"},
            )
            kind = e.integer("restriction_type")
            if kind not in range(4):
                raise ValueError(f"{e.where}.restriction_type: must be 0-3, got {kind}")
            vendors = e.ids("vendors") if e.has("vendors") else frozenset()
            restrictions.append(
                PublisherRestriction(e.integer("purpose_id"), RestrictionType(kind), vendors)
            )
        kwargs["publisher_restrictions"] = tuple(restrictions)
    if r.has("publisher_tc") and data["publisher_tc"] is not None:
        p = _Reader(data["publisher_tc"], "TC string.publisher_tc", _PUB_FIELDS, set())
        pub: dict[str, Any] = {name: p.ids(name) for name in _PUB_FIELDS if p.has(name)}
        if p.has("num_custom_purposes"):
            pub["num_custom_purposes"] = p.integer("num_custom_purposes")
        kwargs["publisher_tc"] = PublisherTC(**pub)
    return TCString(**kwargs)


# -------------------------------------------------------------------------------- GPP -> JSON


def usnat_to_json(section: UsNat) -> dict[str, Any]:
    return {
        f.name: list(value) if isinstance(value := getattr(section, f.name), tuple) else value
        for f in fields(section)
    }


def gpp_to_json(gpp: GPPString) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    for section_id, section in zip(gpp.section_ids, gpp.sections, strict=True):
        name = SECTION_NAMES.get(section_id, f"section_{section_id}")
        if isinstance(section, TCString):
            sections[name] = tc_to_json(section)
        elif isinstance(section, UsNat):
            sections[name] = usnat_to_json(section)
        elif isinstance(section, RawSection):
            sections[name] = {"raw": section.value, "decoded": False}
    return {"section_ids": list(gpp.section_ids), "sections": sections}
