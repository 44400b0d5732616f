"""Bit-level building blocks shared by the TCF and GPP codecs.

Both formats are bit strings, most-significant bit first, written out six bits per character
with the base64url alphabet. This module knows nothing about either format: it reads and writes
fixed-width integers, booleans, bitfields of 1-based ids, 6-bit letters (A=0 … Z=25) and
Fibonacci-coded integers, and turns bit strings into base64url text and back.

Errors are raised as the ``error`` class each reader/decoder is given, so the format modules can
surface their own exception type (``TCStringError``, ``GPPError``) with a message that names the
field that could not be read.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

__all__ = [
    "BASE64URL_ALPHABET",
    "BitReader",
    "BitWriter",
    "IdBudget",
    "consecutive_runs",
    "decode_base64url",
    "encode_base64url",
    "merged_runs",
]

BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_NOT_BASE64URL = re.compile(r"[^A-Za-z0-9_-]")

# Fibonacci numbers as used by Fibonacci coding: 1, 2, 3, 5, 8, … (F(2), F(3), …).
# Enough for any value that fits in 64 bits, far beyond anything GPP encodes.
_FIBONACCI: list[int] = [1, 2]
while _FIBONACCI[-1] < 2**64:
    _FIBONACCI.append(_FIBONACCI[-1] + _FIBONACCI[-2])


def encode_base64url(bits: str) -> str:
    """Encode a string of '0'/'1' as base64url, zero-padding the tail to whole 6-bit characters.

    No '=' padding is ever written.
    """
    if bits.strip("01"):
        raise ValueError("bit string may only contain '0' and '1'")
    remainder = len(bits) % 6
    if remainder:
        bits += "0" * (6 - remainder)
    return "".join(BASE64URL_ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


def decode_base64url(
    text: str, *, error: type[ValueError] = ValueError, what: str = "string"
) -> str:
    """Decode base64url text to a string of '0'/'1' (six bits per character).

    Trailing '=' padding is tolerated and ignored. Any other character outside the base64url
    alphabet (including '+' and '/' from standard base64) raises ``error``.
    """
    stripped = text.rstrip("=")
    if not stripped:
        raise error(f"{what} is empty")
    bad = _NOT_BASE64URL.search(stripped)
    if bad is not None:
        raise error(
            f"{what} has invalid character {bad.group()!r} at position {bad.start()}: "
            "only base64url characters A-Z, a-z, 0-9, '-' and '_' are allowed"
        )
    # Whole 4-character groups decode to bytes in C; the zero bits added to complete the last
    # group are cut off again.
    raw = base64.urlsafe_b64decode(stripped + "A" * (-len(stripped) % 4))
    bits = bin(int.from_bytes(raw, "big"))[2:].zfill(len(raw) * 8)
    return bits[: len(stripped) * 6]


def _check_fits(value: int, width: int, field: str) -> None:
    if not 0 <= value < (1 << width):
        raise ValueError(f"{field}: {value} does not fit in {width} bits (0..{(1 << width) - 1})")


class BitWriter:
    """Accumulates a bit string. Every ``write_*`` method names the field it writes, so an
    out-of-range value produces a ``ValueError`` that says which field was wrong."""

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._length = 0

    def __len__(self) -> int:
        return self._length

    @property
    def bits(self) -> str:
        return "".join(self._chunks)

    def _append(self, bits: str) -> None:
        self._chunks.append(bits)
        self._length += len(bits)

    def write_int(self, value: int, width: int, field: str) -> None:
        _check_fits(value, width, field)
        if width:
            self._append(format(value, f"0{width}b"))

    def write_bool(self, value: bool) -> None:
        self._append("1" if value else "0")

    def write_bitfield(self, ids: Iterable[int], length: int, field: str) -> None:
        """Write ``length`` bits; bit n-1 is set when id n is in ``ids`` (ids are 1-based)."""
        bits = ["0"] * length
        for item in ids:
            if not 1 <= item <= length:
                raise ValueError(f"{field}: id {item} is outside 1..{length}")
            bits[item - 1] = "1"
        self._append("".join(bits))

    def write_letters(self, text: str, count: int, field: str) -> None:
        """Write ``count`` letters A–Z, six bits each, A=0 (case-insensitive)."""
        upper = text.upper()
        if len(upper) != count or not all("A" <= char <= "Z" for char in upper):
            raise ValueError(f"{field}: expected {count} letters A-Z, got {text!r}")
        for char in upper:
            self._append(format(ord(char) - ord("A"), "06b"))

    def write_fibonacci(self, value: int, field: str) -> None:
        """Write a positive integer in Fibonacci coding (Zeckendorf bits, then a closing 1)."""
        if value < 1:
            raise ValueError(f"{field}: Fibonacci coding needs a positive integer, got {value}")
        highest = max(i for i, fib in enumerate(_FIBONACCI) if fib <= value)
        bits = ["0"] * (highest + 1)
        remaining = value
        for index in range(highest, -1, -1):
            if _FIBONACCI[index] <= remaining:
                bits[index] = "1"
                remaining -= _FIBONACCI[index]
        self._append("".join(bits) + "1")

    def pad_to(self, multiple: int) -> None:
        """Append zeros until the length is a multiple of ``multiple``."""
        remainder = self._length % multiple
        if remainder:
            self._append("0" * (multiple - remainder))

    def to_base64url(self) -> str:
        return encode_base64url(self.bits)


class IdBudget:
    """How many ids one decode may still expand from bitfields and ranges.

    A few bits can stand for many ids (a range 1..65535 is 33 bits, a Fibonacci group even
    fewer), so a decoder charges every id before it builds it: memory and time stay bounded by
    ``limit``, whatever the input, and a string past it is refused with a clear error.
    """

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.left = limit
        self.what = what

    def spend(self, count: int, reader: BitReader) -> None:
        if count > self.left:
            raise reader.fail(
                f"{self.what} expands to more than {self.limit} ids; refusing to decode it"
            )
        self.left -= count


class BitReader:
    """Reads fields from a bit string, raising ``error`` with the field name when it runs out."""

    def __init__(
        self, bits: str, *, error: type[ValueError] = ValueError, context: str = ""
    ) -> None:
        self._bits = bits
        self._position = 0
        self._error = error
        self._context = context

    @property
    def position(self) -> int:
        return self._position

    @property
    def remaining(self) -> int:
        return len(self._bits) - self._position

    def fail(self, message: str) -> ValueError:
        """Build the reader's error type with the reader's context prefixed."""
        prefix = f"{self._context}: " if self._context else ""
        return self._error(prefix + message)

    def _take(self, width: int, field: str) -> str:
        if width > self.remaining:
            raise self.fail(
                f"string ended while reading {field} (needs {width} bits at bit "
                f"{self._position}, only {self.remaining} left)"
            )
        chunk = self._bits[self._position : self._position + width]
        self._position += width
        return chunk

    def read_int(self, width: int, field: str) -> int:
        return int(self._take(width, field), 2) if width else 0

    def read_bool(self, field: str) -> bool:
        return self._take(1, field) == "1"

    def read_bitfield(
        self, length: int, field: str, budget: IdBudget | None = None
    ) -> frozenset[int]:
        """Read ``length`` bits and return the 1-based ids whose bit is set (each charged to
        ``budget`` first, when given)."""
        chunk = self._take(length, field)
        if budget is not None:
            budget.spend(chunk.count("1"), self)
        return frozenset(index + 1 for index, bit in enumerate(chunk) if bit == "1")

    def read_letters(self, count: int, field: str) -> str:
        letters: list[str] = []
        for _ in range(count):
            value = self.read_int(6, field)
            if value > 25:
                raise self.fail(f"{field}: 6-bit value {value} is not a letter A-Z")
            letters.append(chr(ord("A") + value))
        return "".join(letters)

    def read_fibonacci(self, field: str) -> int:
        """Read one Fibonacci-coded positive integer (terminated by two consecutive 1 bits)."""
        total = 0
        previous = "0"
        index = 0
        while True:
            if self.remaining == 0:
                raise self.fail(
                    f"string ended while reading {field} (Fibonacci code not terminated by '11')"
                )
            bit = self._take(1, field)
            if bit == "1" and previous == "1":
                return total
            if bit == "1":
                if index >= len(_FIBONACCI):
                    raise self.fail(f"{field}: Fibonacci code is implausibly long")
                total += _FIBONACCI[index]
            previous = bit
            index += 1


def merged_runs(runs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (first, last) runs covering the same ids as ``runs``:
    [(5, 9), (1, 3), (2, 6)] → [(1, 9)]. Lets a decoder count and build the ids of many
    overlapping ranges once each."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(runs):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def consecutive_runs(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Group ids into sorted (first, last) runs of consecutive values: {1,2,3,7} → [(1,3),(7,7)]."""
    runs: list[tuple[int, int]] = []
    for item in sorted(set(ids)):
        if runs and item == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], item)
        else:
            runs.append((item, item))
    return runs
