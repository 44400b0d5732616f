"""TC string throughput: our decoder and encoder against the `iab-tcf` package's decoder.

    python bench/tcf.py [--strings N] [--repeat R] [--seed S]

Both decoders read the same strings in the same run (a seeded mix of consent-screen outcomes:
"accept all" over a GVL-sized vendor list, partial choices, sparse range-encoded vendor sets,
publisher restrictions, disclosed-vendors segments). iab-tcf decodes only, so encodes/s has no
counterpart. Differences in work: we expand vendor ranges into id sets and validate every field;
iab-tcf keeps ranges as (start, end) pairs and bitfields as {id: bool} dicts. Each figure is the
best of R timed passes over all strings. Prints JSON.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import iab_tcf
from _common import emit

from consentry.standards import (
    PublisherRestriction,
    RestrictionType,
    TCString,
    decode_tc_string,
    encode_tc_string,
)

GVL_SIZE = 1200  # vendor ids in a recent Global Vendor List go a little past 1000


def _vendors(rng: random.Random, share: float, top: int = GVL_SIZE) -> frozenset[int]:
    return frozenset(v for v in range(1, top + 1) if rng.random() < share)


def corpus(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    day = datetime(2026, 1, 1, tzinfo=UTC)
    strings = []
    for index in range(count):
        profile = index % 4
        if profile == 0:  # accept all
            consents, purposes = _vendors(rng, 0.9), frozenset(range(1, 12))
        elif profile == 1:  # a few purposes, some vendors
            consents, purposes = _vendors(rng, 0.3), frozenset(rng.sample(range(1, 12), 4))
        elif profile == 2:  # sparse: range encoding wins
            consents = frozenset(rng.randrange(1, GVL_SIZE) for _ in range(12))
            purposes = frozenset({1})
        else:  # reject all
            consents, purposes = frozenset(), frozenset()
        moment = day + timedelta(days=rng.randrange(300))
        tc = TCString(
            created=moment,
            last_updated=moment,
            cmp_id=rng.randrange(2, 400),
            cmp_version=rng.randrange(1, 20),
            consent_screen=rng.randrange(1, 5),
            consent_language=rng.choice(["EN", "FR", "DE", "NL"]),
            vendor_list_version=rng.randrange(100, 200),
            purposes_consent=purposes,
            purposes_li_transparency=frozenset({2, 7, 8, 9, 10} if profile != 3 else ()),
            special_feature_optins=frozenset({1} if profile == 0 else ()),
            publisher_cc="NL",
            vendor_consents=consents,
            vendor_legitimate_interests=_vendors(rng, 0.2, 800) if profile != 3 else frozenset(),
            publisher_restrictions=(
                PublisherRestriction(2, RestrictionType.REQUIRE_CONSENT, _vendors(rng, 0.05)),
            )
            if profile == 1
            else (),
            disclosed_vendors=_vendors(rng, 0.95),
        )
        strings.append(encode_tc_string(tc))
    return strings


def best_rate(work: Callable[[], int], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        done = work()
        best = max(best, done / (time.perf_counter() - started))
    return best


def check_agreement(strings: list[str]) -> None:
    """Both decoders must read the same consents, or the comparison is meaningless."""
    for text in strings:
        ours, theirs = decode_tc_string(text), iab_tcf.decode(text)
        if theirs.is_consent_range_encoding:
            ids = {v for a, b in theirs.consented_vendors_range for v in range(a, b + 1)}
        else:
            ids = {v for v, on in theirs.consented_vendors.items() if on}
        if ids != ours.vendor_consents:
            raise SystemExit(f"decoders disagree on {text[:40]}...")


def run(count: int, repeat: int, seed: int) -> dict[str, Any]:
    strings = corpus(count, seed)
    check_agreement(strings)
    models = [decode_tc_string(s) for s in strings]

    def ours_decode() -> int:
        for text in strings:
            decode_tc_string(text)
        return len(strings)

    def iab_decode() -> int:
        for text in strings:
            iab_tcf.decode(text)
        return len(strings)

    def ours_encode() -> int:
        for model in models:
            encode_tc_string(model)
        return len(models)

    decodes = best_rate(ours_decode, repeat)
    iab_decodes = best_rate(iab_decode, repeat)
    encodes = best_rate(ours_encode, repeat)
    return {
        "strings": len(strings),
        "mean_string_length": round(sum(map(len, strings)) / len(strings), 1),
        "repeat": repeat,
        "consentry_decodes_per_second": round(decodes, 1),
        "iab_tcf_decodes_per_second": round(iab_decodes, 1),
        "consentry_vs_iab_tcf_decode": round(decodes / iab_decodes, 2),
        "consentry_encodes_per_second": round(encodes, 1),
        "iab_tcf_encodes_per_second": None,  # iab-tcf has no encoder
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strings", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    emit("tcf", run(args.strings, args.repeat, args.seed))


if __name__ == "__main__":
    main()
