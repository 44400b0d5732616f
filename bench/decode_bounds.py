"""Worst-case decodes: hostile TC and GPP strings of at most 64 KB, timed and weighed.

    python bench/decode_bounds.py [--repeat R] [--case NAME ...]

Each case is a string built to make a decoder expand or loop as much as its size allows
(overlapping vendor ranges, full bitfields, a Fibonacci group of a million section ids, thousands
of sections). Each runs in its own child process (so one case's memory does not count in
another's), limited to 4 GB of address space and 120 s; the figures are the best and worst of R
decodes (wall clock), the peak memory traced during one decode (tracemalloc) and how it ended
(decoded, or the error's first words). The target: every case within 50 ms and 10 MB. Prints
JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from _common import emit

from consentry.standards import TCString, decode_gpp, decode_tc_string, encode_tc_string
from consentry.standards._bits import BitWriter, decode_base64url, encode_base64url

LIMIT = 64 * 1024


def _core_bits() -> str:
    day = datetime(2025, 1, 1, tzinfo=UTC)
    tc = TCString(created=day, last_updated=day, cmp_id=300, vendor_list_version=120)
    return decode_base64url(encode_tc_string(tc).split(".")[0])[:213]


def _ranges(runs: list[tuple[int, int]]) -> str:
    w = BitWriter()
    w.write_int(max(last for _, last in runs), 16, "MaxVendorId")
    w.write_bool(True)
    w.write_int(len(runs), 12, "NumEntries")
    for first, last in runs:
        w.write_bool(first != last)
        w.write_int(first, 16, "Start")
        if first != last:
            w.write_int(last, 16, "End")
    return w.bits


def _bitfield(count: int) -> str:
    w = BitWriter()
    w.write_int(count, 16, "MaxVendorId")
    w.write_bool(False)
    return w.bits + "1" * count


def tc_1000_overlapping_ranges() -> str:
    """The reported case: 1,000 ranges 1..65535 (5.5 KB)."""
    full = _ranges([(1, 65_535)] * 1_000)
    return encode_base64url(_core_bits() + full + _ranges([(1, 1)]) + "0" * 12)


def tc_4000_overlapping_ranges_twice() -> str:
    """4,000 ranges in each vendor section (about 33 KB)."""
    full = _ranges([(1, 65_535)] * 4_000)
    return encode_base64url(_core_bits() + full + full + "0" * 12)


def tc_full_bitfields() -> str:
    """Consents and legitimate interests as full 65,535-bit bitfields (about 22 KB)."""
    full = _bitfield(65_535)
    return encode_base64url(_core_bits() + full + full + "0" * 12)


def tc_largest_within_the_bound() -> str:
    """Disjoint ranges: 4,095 of 16 ids, then 2,000 of 16 ids (98,000 ids, about 25 KB)."""
    consents = _ranges([(1 + 16 * i, 16 * (i + 1)) for i in range(4_095)])
    interests = _ranges([(1 + 16 * i, 16 * (i + 1)) for i in range(2_000)])
    return encode_base64url(_core_bits() + consents + interests + "0" * 12)


def _group_header(first: int, length: int) -> str:
    w = BitWriter()
    w.write_int(3, 6, "Type")
    w.write_int(1, 6, "Version")
    w.write_int(1, 12, "NumEntries")
    w.write_bool(True)
    w.write_fibonacci(first, "Offset")
    w.write_fibonacci(length, "Length")
    return w.to_base64url()


def gpp_header_of_1_35m_ids() -> str:
    """A 10-character header whose one group lists 1,350,001 section ids."""
    return _group_header(1, 1_350_000) + "~AAAA"


def gpp_20000_sections() -> str:
    """A header listing ids 13..20012 and 20,000 two-character sections (60 KB)."""
    return _group_header(13, 19_999) + "~AA" * 20_000


def gpp_with_hostile_tcf_section() -> str:
    """A GPP string whose tcfeuv2 section is the 4,000-range TC string."""
    w = BitWriter()
    w.write_int(3, 6, "Type")
    w.write_int(1, 6, "Version")
    w.write_int(1, 12, "NumEntries")
    w.write_bool(False)
    w.write_fibonacci(2, "Offset")
    return w.to_base64url() + "~" + tc_4000_overlapping_ranges_twice()


CASES: dict[str, tuple[Callable[[], str], Callable[[str], object]]] = {
    "tc_1000_overlapping_ranges": (tc_1000_overlapping_ranges, decode_tc_string),
    "tc_4000_overlapping_ranges_twice": (tc_4000_overlapping_ranges_twice, decode_tc_string),
    "tc_full_bitfields": (tc_full_bitfields, decode_tc_string),
    "tc_largest_within_the_bound": (tc_largest_within_the_bound, decode_tc_string),
    "gpp_header_of_1_35m_ids": (gpp_header_of_1_35m_ids, decode_gpp),
    "gpp_20000_sections": (gpp_20000_sections, decode_gpp),
    "gpp_with_hostile_tcf_section": (gpp_with_hostile_tcf_section, decode_gpp),
}


def _outcome(decode: Callable[[str], object], text: str) -> str:
    try:
        decode(text)
    except ValueError as exc:
        return "refused: " + str(exc)[:160]
    return "decoded"


def run_case(name: str, repeat: int) -> dict[str, Any]:
    build, decode = CASES[name]
    text = build()
    assert len(text) <= LIMIT, (name, len(text))
    tracemalloc.start()
    outcome = _outcome(decode, text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        _outcome(decode, text)
        times.append(time.perf_counter() - started)
    return {
        "chars": len(text),
        "best_ms": round(min(times) * 1000, 2),
        "worst_ms": round(max(times) * 1000, 2),
        "peak_traced_mb": round(peak / 1e6, 2),
        "outcome": outcome,
    }


def _child(name: str, repeat: int) -> dict[str, Any]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    command = [sys.executable, __file__, "--child", name, "--repeat", str(repeat)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, preexec_fn=limit
        )
    except subprocess.TimeoutExpired:
        return {"outcome": "did not finish within 120 s"}
    if done.returncode != 0:
        return {"outcome": f"failed: {done.stderr.strip().splitlines()[-1:]}"}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.repeat)))
        return
    results = {name: _child(name, args.repeat) for name in args.case or CASES}
    within = all(
        r.get("worst_ms", 1e9) <= 50 and r.get("peak_traced_mb", 1e9) <= 10
        for r in results.values()
    )
    emit("decode_bounds", {"cases": results, "every_case_within_50_ms_and_10_mb": within})


if __name__ == "__main__":
    main()
