"""IAB consent-string standards: TCF v2.2/2.3 TC strings and GPP strings (tcfeuv2, usnat).

Pure Python, standard library only, no I/O. Typical use::

    from consentry.standards import decode_tc_string, validate_tc_string, decode_gpp

    tc = decode_tc_string(cookie_value)          # raises TCStringError on malformed input
    problems = validate_tc_string(tc)            # policy issues, e.g. TCF 2.3 rules
    gpp = decode_gpp(gpp_string)                 # raises GPPError on malformed input
    if gpp.usnat is not None and gpp.usnat.gpc: ...
"""

from ._errors import GPPError, StandardsError, TCStringError
from .gpp import SECTION_NAMES, GPPSection, GPPString, RawSection, decode_gpp, encode_gpp
from .tcf_codec import decode_tc_string, encode_tc_string
from .tcf_model import PublisherRestriction, PublisherTC, RestrictionType, TCString
from .tcf_policy import PolicyIssue, validate_tc_string
from .usnat import UsNat, decode_usnat, encode_usnat

__all__ = [
    "SECTION_NAMES",
    "GPPError",
    "GPPSection",
    "GPPString",
    "PolicyIssue",
    "PublisherRestriction",
    "PublisherTC",
    "RawSection",
    "RestrictionType",
    "StandardsError",
    "TCString",
    "TCStringError",
    "UsNat",
    "decode_gpp",
    "decode_tc_string",
    "decode_usnat",
    "encode_gpp",
    "encode_tc_string",
    "encode_usnat",
    "validate_tc_string",
]
