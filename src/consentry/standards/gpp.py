"""IAB Global Privacy Platform (GPP) strings: header, tcfeuv2 and usnat sections.

Spec: Global-Privacy-Platform, "Core/Consent String Specification.md". A GPP string is
``Header~Section~Section…``. The header is base64url bits: Type Int(6) = 3, Version Int(6) = 1,
then the section ids as a Fibonacci range (Int(12) entry count; per entry a group flag, the
Fibonacci-coded offset from the previous id, and for a group the Fibonacci-coded distance from
its first to its last id). Sections follow in header order, which is ascending id order.

Decoding is bounded: a string carries at most ``MAX_SECTIONS`` sections (about twenty section
ids exist), and the header may list no more section ids than the string has sections; the
decoder stops as soon as it lists more (a short Fibonacci group can stand for millions).

Section 2 (tcfeuv2) holds a TC string, section 7 (usnat) is decoded by ``usnat``; every other
section is kept verbatim as a RawSection and listed by ``GPPString.unknown_section_ids``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ._bits import BitReader, BitWriter, consecutive_runs, decode_base64url
from ._errors import GPPError, TCStringError
from .tcf_codec import decode_tc_string, encode_tc_string
from .tcf_model import TCString
from .usnat import UsNat, decode_usnat, encode_usnat

__all__ = [
    "SECTION_NAMES",
    "GPPSection",
    "GPPString",
    "RawSection",
    "decode_gpp",
    "encode_gpp",
]

HEADER_TYPE = 3
MAX_SECTIONS = 100
GPP_VERSION = 1
TCFEUV2_SECTION_ID = 2
USNAT_SECTION_ID = UsNat.SECTION_ID

# Client-side API prefixes from "Sections/Section Information.md".
SECTION_NAMES: dict[int, str] = {
    1: "tcfeuv1",
    2: "tcfeuv2",
    5: "tcfcav1",
    6: "uspv1",
    7: "usnat",
    8: "usca",
    9: "usva",
    10: "usco",
    11: "usut",
    12: "usct",
}


@dataclass(frozen=True)
class RawSection:
    """A section this module does not decode, kept exactly as it appeared in the string."""

    section_id: int
    value: str

    def __post_init__(self) -> None:
        if self.section_id in (TCFEUV2_SECTION_ID, USNAT_SECTION_ID):
            kind = "TCString" if self.section_id == TCFEUV2_SECTION_ID else "UsNat"
            raise GPPError(f"section {self.section_id} must be given as a {kind}, not raw")
        if self.section_id < 1:
            raise GPPError(f"section id must be >= 1, got {self.section_id}")
        if not self.value or "~" in self.value:
            raise GPPError(f"section {self.section_id}: value must be non-empty without '~'")


GPPSection = TCString | UsNat | RawSection


def section_id_of(section: GPPSection) -> int:
    if isinstance(section, TCString):
        return TCFEUV2_SECTION_ID
    if isinstance(section, UsNat):
        return USNAT_SECTION_ID
    return section.section_id


@dataclass(frozen=True)
class GPPString:
    """A GPP string: its sections, stored in ascending section-id order (the header order)."""

    sections: tuple[GPPSection, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.sections, key=section_id_of))
        ids = [section_id_of(section) for section in ordered]
        duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
        if duplicates:
            raise GPPError(f"duplicate GPP section ids {duplicates}")
        object.__setattr__(self, "sections", ordered)

    @property
    def section_ids(self) -> tuple[int, ...]:
        return tuple(section_id_of(section) for section in self.sections)

    @property
    def unknown_section_ids(self) -> tuple[int, ...]:
        """Ids of the sections kept as RawSection because this module does not decode them."""
        return tuple(s.section_id for s in self.sections if isinstance(s, RawSection))

    @property
    def tcfeuv2(self) -> TCString | None:
        return next((s for s in self.sections if isinstance(s, TCString)), None)

    @property
    def usnat(self) -> UsNat | None:
        return next((s for s in self.sections if isinstance(s, UsNat)), None)

    def section(self, section_id: int) -> GPPSection | None:
        return next((s for s in self.sections if section_id_of(s) == section_id), None)


# ------------------------------------------------------------------------------------- header


def _encode_header(section_ids: tuple[int, ...], *, byte_align: bool) -> str:
    w = BitWriter()
    w.write_int(HEADER_TYPE, 6, "Type")
    w.write_int(GPP_VERSION, 6, "Version")
    runs = consecutive_runs(section_ids)
    w.write_int(len(runs), 12, "Sections.NumEntries")
    previous = 0
    for first, last in runs:
        w.write_bool(first != last)
        w.write_fibonacci(first - previous, "Sections.Offset")
        if first != last:
            w.write_fibonacci(last - first, "Sections.Length")
        previous = last
    if byte_align:
        w.pad_to(8)
    return w.to_base64url()


def _shown(ids: list[int], total: int, most: int = 20) -> str:
    """Section ids for an error message: the first ``most`` of ``ids``, then how many more of
    the ``total``."""
    if total <= most:
        return str(ids[:total])
    return f"[{', '.join(map(str, ids[:most]))}, … {total - most} more]"


def _decode_header(text: str, sections: int) -> list[int]:
    """The section ids the header lists; GPPError as soon as they outnumber ``sections``, the
    sections the string carries (so a short header cannot expand to millions of ids)."""
    bits = decode_base64url(text, error=GPPError, what="GPP header")
    r = BitReader(bits, error=GPPError, context="GPP header")
    header_type = r.read_int(6, "Type")
    if header_type != HEADER_TYPE:
        hint = " (this looks like a TCF TC string, not a GPP string)" if header_type == 2 else ""
        raise GPPError(f"GPP header: Type is {header_type}, expected {HEADER_TYPE}{hint}")
    version = r.read_int(6, "Version")
    if version != GPP_VERSION:
        raise GPPError(f"GPP header: unsupported Version {version}, expected {GPP_VERSION}")
    ids: list[int] = []
    previous = 0
    entries = r.read_int(12, "Sections.NumEntries")
    for entry in range(entries):
        is_group = r.read_bool("Sections.IsGroup")
        first = previous + r.read_fibonacci("Sections.Offset")
        last = first + r.read_fibonacci("Sections.Length") if is_group else first
        listed = range(first, last + 1)
        if len(ids) + len(listed) > sections:
            more = "at least " if entry + 1 < entries else ""
            total = len(ids) + len(listed)
            raise GPPError(
                f"GPP header lists {more}{total} section(s) "
                f"{_shown([*ids[:20], *listed[:20]], total)} but the string has {sections} "
                "section(s) after the header"
            )
        ids.extend(listed)
        previous = last
    return ids  # any remaining bits are padding (iabgpp-es writes more of it than the spec)


# ------------------------------------------------------------------------------ encode/decode


def encode_gpp(gpp: GPPString, *, byte_align: bool = False) -> str:
    """Encode a GPP string. Bit strings are zero-padded to whole base64url characters as the
    spec says; ``byte_align=True`` pads the header and usnat sub-sections to a whole byte first,
    reproducing iabgpp-es output (e.g. header "DBABMA" instead of the spec's "DBABM"). The
    tcfeuv2 section is always the TC string as ``encode_tc_string`` writes it."""
    parts = [_encode_header(gpp.section_ids, byte_align=byte_align)]
    for section in gpp.sections:
        if isinstance(section, TCString):
            try:
                parts.append(encode_tc_string(section))
            except TCStringError as exc:
                raise GPPError(f"section 2 (tcfeuv2): {exc}") from exc
        elif isinstance(section, UsNat):
            parts.append(encode_usnat(section, byte_align=byte_align))
        else:
            parts.append(section.value)
    return "~".join(parts)


def decode_gpp(text: str) -> GPPString:
    """Decode a GPP string. Raises GPPError naming the section and field that is malformed.

    Sections other than tcfeuv2 (2) and usnat (7) are kept as RawSection values.
    """
    if not isinstance(text, str):
        raise GPPError(f"GPP string must be a str, got {type(text).__name__}")
    header, *bodies = text.split("~", MAX_SECTIONS + 1)
    if len(bodies) > MAX_SECTIONS:
        raise GPPError(f"GPP string has more than {MAX_SECTIONS} sections; refusing to decode it")
    section_ids = _decode_header(header, len(bodies))
    if len(section_ids) != len(bodies):
        raise GPPError(
            f"GPP header lists {len(section_ids)} section(s) "
            f"{_shown(section_ids, len(section_ids))} but the string has {len(bodies)} "
            "section(s) after the header"
        )
    sections: list[GPPSection] = []
    for section_id, body in zip(section_ids, bodies, strict=True):
        name = SECTION_NAMES.get(section_id, "unknown")
        if not body:
            raise GPPError(f"section {section_id} ({name}) is empty")
        if section_id == TCFEUV2_SECTION_ID:
            try:
                sections.append(decode_tc_string(body))
            except TCStringError as exc:
                raise GPPError(f"section 2 (tcfeuv2): {exc}") from exc
        elif section_id == USNAT_SECTION_ID:
            sections.append(decode_usnat(body))
        else:
            sections.append(RawSection(section_id, body))
    return GPPString(tuple(sections))
