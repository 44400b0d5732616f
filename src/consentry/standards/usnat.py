"""The GPP US National section ("usnat", section id 7), versions 1 and 2.

Spec: Global-Privacy-Platform, Sections/US-National ("IAB Privacy's National Privacy Technical
Specification" for v1, "… MSPA US National Technical Specification" for v2). The section is a
core sub-section, optionally followed by "." and a GPC sub-section (SubsectionType Int(2) = 1,
then one Gpc bit, 1 = true).

Core fields, in order: Version Int(6); nine Int(2) notice / opt-out fields; SensitiveDataProcessing
N-Bitfield(2, 12 or 16); KnownChildSensitiveDataConsents N-Bitfield(2, 2 or 3);
PersonalDataConsents, MspaCoveredTransaction, MspaOptOutOptionMode and MspaServiceProviderMode,
each Int(2).

The 12/2 layout came first (v1), the 16/3 layout with the DE, IA, NE, NH, NJ and TN release;
the reference libraries (iabgpp-java, iabgpp-es) choose the layout by the core's length, not its
Version (iabgpp-java writes Version 1 with the 16/3 layout), and so does this module: a core of
60 to 69 bits (10 or 11 characters) is 12/2, a longer one 16/3.

Values are kept as the raw 2-bit integers (0 = not applicable, 1 / 2 per the spec); this module
checks only that they fit in two bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ._bits import BitReader, BitWriter, decode_base64url
from ._errors import GPPError

__all__ = ["UsNat", "decode_usnat", "encode_usnat"]

USNAT_SECTION_ID = 7
GPC_SUBSECTION_TYPE = 1
# version -> its default (SensitiveDataProcessing entries, KnownChildSensitiveDataConsents entries)
_LAYOUTS: dict[int, tuple[int, int]] = {1: (12, 2), 2: (16, 3)}
_OLD_LAYOUT, _NEW_LAYOUT = (12, 2), (16, 3)
# Bits of a core in the 16/3 layout: 6 + 9*2 + 16*2 + 3*2 + 4*2.
_NEW_LAYOUT_BITS = 70


@dataclass(frozen=True, kw_only=True)
class UsNat:
    """A decoded usnat section. ``gpc`` is None when the GPC sub-section is absent.

    ``sensitive_data_processing`` / ``known_child_sensitive_data_consents`` default to all-zero
    tuples in the version's layout (v1 12/2, v2 16/3); given, they must be 12 and 2 or 16 and
    3 values (either layout with either version, as the reference libraries write them), else
    GPPError.
    ``mspa_covered_transaction`` has no default: the spec allows only 1 (yes) or 2 (no).
    """

    SECTION_ID: ClassVar[int] = USNAT_SECTION_ID

    version: int = 2
    sharing_notice: int = 0
    sale_opt_out_notice: int = 0
    sharing_opt_out_notice: int = 0
    targeted_advertising_opt_out_notice: int = 0
    sensitive_data_processing_opt_out_notice: int = 0
    sensitive_data_limit_use_notice: int = 0
    sale_opt_out: int = 0
    sharing_opt_out: int = 0
    targeted_advertising_opt_out: int = 0
    sensitive_data_processing: tuple[int, ...] = ()
    known_child_sensitive_data_consents: tuple[int, ...] = ()
    personal_data_consents: int = 0
    mspa_covered_transaction: int
    mspa_opt_out_option_mode: int = 0
    mspa_service_provider_mode: int = 0
    gpc: bool | None = None

    def __post_init__(self) -> None:
        default = _LAYOUTS.get(self.version)
        if default is None:
            return  # unsupported version: encode_usnat reports it
        sdp = tuple(self.sensitive_data_processing)
        child = tuple(self.known_child_sensitive_data_consents)
        if sdp and not child:  # the child consents' length follows the layout given
            child = (0,) * {12: 2, 16: 3}.get(len(sdp), 0)
        layout = (len(sdp), len(child))
        if sdp or child:
            if layout not in (_OLD_LAYOUT, _NEW_LAYOUT):
                raise GPPError(
                    "usnat sensitive_data_processing and known_child_sensitive_data_consents "
                    f"need 12 and 2 or 16 and 3 values, got {layout[0]} and {layout[1]}"
                )
        else:
            sdp, child = (0,) * default[0], (0,) * default[1]
        object.__setattr__(self, "sensitive_data_processing", sdp)
        object.__setattr__(self, "known_child_sensitive_data_consents", child)

    @property
    def layout(self) -> tuple[int, int]:
        """(SensitiveDataProcessing entries, KnownChildSensitiveDataConsents entries)."""
        return len(self.sensitive_data_processing), len(self.known_child_sensitive_data_consents)


def _check_version(version: int) -> None:
    if version not in _LAYOUTS:
        raise GPPError(f"unsupported usnat version {version}: expected 1 or 2")


def _write_core(w: BitWriter, u: UsNat, sdp_count: int, child_count: int) -> None:
    w.write_int(u.version, 6, "Version")
    w.write_int(u.sharing_notice, 2, "SharingNotice")
    w.write_int(u.sale_opt_out_notice, 2, "SaleOptOutNotice")
    w.write_int(u.sharing_opt_out_notice, 2, "SharingOptOutNotice")
    w.write_int(u.targeted_advertising_opt_out_notice, 2, "TargetedAdvertisingOptOutNotice")
    w.write_int(
        u.sensitive_data_processing_opt_out_notice, 2, "SensitiveDataProcessingOptOutNotice"
    )
    w.write_int(u.sensitive_data_limit_use_notice, 2, "SensitiveDataLimitUseNotice")
    w.write_int(u.sale_opt_out, 2, "SaleOptOut")
    w.write_int(u.sharing_opt_out, 2, "SharingOptOut")
    w.write_int(u.targeted_advertising_opt_out, 2, "TargetedAdvertisingOptOut")
    for name, values, count in (
        ("SensitiveDataProcessing", u.sensitive_data_processing, sdp_count),
        ("KnownChildSensitiveDataConsents", u.known_child_sensitive_data_consents, child_count),
    ):
        if len(values) != count:
            raise ValueError(f"{name}: needs {count} values, got {len(values)}")
        for index, value in enumerate(values, start=1):
            w.write_int(value, 2, f"{name}[{index}]")
    w.write_int(u.personal_data_consents, 2, "PersonalDataConsents")
    w.write_int(u.mspa_covered_transaction, 2, "MspaCoveredTransaction")
    w.write_int(u.mspa_opt_out_option_mode, 2, "MspaOptOutOptionMode")
    w.write_int(u.mspa_service_provider_mode, 2, "MspaServiceProviderMode")


def encode_usnat(section: UsNat, *, byte_align: bool = False) -> str:
    """Encode a usnat section. With ``byte_align`` each sub-section is padded to a whole byte
    before the 6-bit padding, which reproduces the output of the iabgpp-es reference library."""
    _check_version(section.version)
    sdp_count, child_count = section.layout
    core = BitWriter()
    try:
        _write_core(core, section, sdp_count, child_count)
    except ValueError as exc:
        raise GPPError(f"cannot encode usnat section: {exc}") from exc
    writers = [core]
    if section.gpc is not None:
        gpc = BitWriter()
        gpc.write_int(GPC_SUBSECTION_TYPE, 2, "SubsectionType")
        gpc.write_bool(section.gpc)
        writers.append(gpc)
    if byte_align:
        for writer in writers:
            writer.pad_to(8)
    return ".".join(writer.to_base64url() for writer in writers)


def _read_gpc(subsections: list[str]) -> bool | None:
    gpc: bool | None = None
    for index, subsection in enumerate(subsections, start=2):
        what = f"usnat sub-section {index}"
        bits = decode_base64url(subsection, error=GPPError, what=what)
        reader = BitReader(bits, error=GPPError, context=what)
        subsection_type = reader.read_int(2, "SubsectionType")
        if subsection_type != GPC_SUBSECTION_TYPE:
            raise GPPError(f"{what}: unknown SubsectionType {subsection_type}")
        if gpc is not None:
            raise GPPError(f"{what}: duplicate GPC sub-section")
        gpc = reader.read_bool("Gpc")
    return gpc


def decode_usnat(text: str) -> UsNat:
    """Decode a usnat section (core sub-section, optionally "." GPC sub-section). The layout
    follows the core's length (see the module docstring); bits after the last field (padding)
    are ignored, so both spec and iabgpp-es padding are accepted."""
    core_text, *subsections = text.split(".")
    gpc = _read_gpc(subsections)
    bits = decode_base64url(core_text, error=GPPError, what="usnat core sub-section")
    r = BitReader(bits, error=GPPError, context="usnat core sub-section")
    version = r.read_int(6, "Version")
    _check_version(version)
    sdp_count, child_count = _NEW_LAYOUT if len(bits) >= _NEW_LAYOUT_BITS else _OLD_LAYOUT
    # Keyword arguments are evaluated left to right, i.e. in the order the bits are laid out.
    return UsNat(
        version=version,
        sharing_notice=r.read_int(2, "SharingNotice"),
        sale_opt_out_notice=r.read_int(2, "SaleOptOutNotice"),
        sharing_opt_out_notice=r.read_int(2, "SharingOptOutNotice"),
        targeted_advertising_opt_out_notice=r.read_int(2, "TargetedAdvertisingOptOutNotice"),
        sensitive_data_processing_opt_out_notice=r.read_int(
            2, "SensitiveDataProcessingOptOutNotice"
        ),
        sensitive_data_limit_use_notice=r.read_int(2, "SensitiveDataLimitUseNotice"),
        sale_opt_out=r.read_int(2, "SaleOptOut"),
        sharing_opt_out=r.read_int(2, "SharingOptOut"),
        targeted_advertising_opt_out=r.read_int(2, "TargetedAdvertisingOptOut"),
        sensitive_data_processing=tuple(
            r.read_int(2, f"SensitiveDataProcessing[{i}]") for i in range(1, sdp_count + 1)
        ),
        known_child_sensitive_data_consents=tuple(
            r.read_int(2, f"KnownChildSensitiveDataConsents[{i}]")
            for i in range(1, child_count + 1)
        ),
        personal_data_consents=r.read_int(2, "PersonalDataConsents"),
        mspa_covered_transaction=r.read_int(2, "MspaCoveredTransaction"),
        mspa_opt_out_option_mode=r.read_int(2, "MspaOptOutOptionMode"),
        mspa_service_provider_mode=r.read_int(2, "MspaServiceProviderMode"),
        gpc=gpc,
    )
