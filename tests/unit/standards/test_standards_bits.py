"""Bit reader/writer, base64url and Fibonacci coding (consentry.standards._bits)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.standards._bits import (
    BitReader,
    BitWriter,
    consecutive_runs,
    decode_base64url,
    encode_base64url,
)

# The table "About Fibonacci Encoding" in the GPP spec
# (InteractiveAdvertisingBureau/Global-Privacy-Platform, Core/Consent String Specification.md).
FIBONACCI_SPEC_TABLE = {1: "11", 2: "011", 3: "0011", 4: "1011", 5: "00011", 6: "10011", 7: "01011"}


class _Boom(ValueError):
    pass


@pytest.mark.parametrize(("value", "bits"), sorted(FIBONACCI_SPEC_TABLE.items()))
def test_fibonacci_encoding_matches_the_gpp_spec_table(value: int, bits: str) -> None:
    writer = BitWriter()
    writer.write_fibonacci(value, "n")
    assert writer.bits == bits
    assert BitReader(bits).read_fibonacci("n") == value


@given(st.lists(st.integers(min_value=1, max_value=10**9), max_size=20))
def test_fibonacci_sequences_decode_back_without_length_prefixes(values: list[int]) -> None:
    writer = BitWriter()
    for value in values:
        writer.write_fibonacci(value, "n")
    reader = BitReader(writer.bits)
    assert [reader.read_fibonacci("n") for _ in values] == values
    assert reader.remaining == 0


def test_fibonacci_rejects_zero_because_the_code_cannot_represent_it() -> None:
    with pytest.raises(ValueError, match="positive"):
        BitWriter().write_fibonacci(0, "Offset")


def test_unterminated_fibonacci_code_names_the_field() -> None:
    with pytest.raises(_Boom, match="Offset.*not terminated"):
        BitReader("0101", error=_Boom).read_fibonacci("Offset")


def test_base64url_encode_pads_to_whole_characters_without_equals_sign() -> None:
    assert encode_base64url("000011000001") == "DB"
    assert encode_base64url("0000110000010000000000010011") == "DBABM"  # GPP spec header example 1
    assert "=" not in encode_base64url("1" * 25)


def test_base64url_decode_tolerates_trailing_equals_padding() -> None:
    assert decode_base64url("DB==") == decode_base64url("DB") == "000011000001"


@pytest.mark.parametrize("text", ["DB+A", "DB/A", "D B", "DB=A", "DBé"])
def test_base64url_decode_rejects_characters_outside_the_url_safe_alphabet(text: str) -> None:
    with pytest.raises(_Boom, match="invalid character"):
        decode_base64url(text, error=_Boom)


def test_base64url_decode_rejects_empty_input() -> None:
    with pytest.raises(_Boom, match="segment is empty"):
        decode_base64url("=", error=_Boom, what="segment")


@given(st.text(alphabet="01", max_size=200))
def test_base64url_round_trip_keeps_bits_and_appends_only_zero_padding(bits: str) -> None:
    decoded = decode_base64url(encode_base64url(bits)) if bits else ""
    assert decoded.startswith(bits)
    assert set(decoded[len(bits) :]) <= {"0"}
    assert len(decoded) - len(bits) < 6


def test_reader_reports_field_position_and_missing_bits_when_input_runs_out() -> None:
    reader = BitReader("1010", error=_Boom, context="core segment")
    assert reader.read_int(2, "A") == 2
    with pytest.raises(_Boom, match=r"core segment: .*CmpId.*needs 12 bits at bit 2, only 2 left"):
        reader.read_int(12, "CmpId")


def test_writer_rejects_values_that_do_not_fit_their_width() -> None:
    with pytest.raises(ValueError, match="CmpId: 4096 does not fit in 12 bits"):
        BitWriter().write_int(4096, 12, "CmpId")
    with pytest.raises(ValueError, match="does not fit"):
        BitWriter().write_int(-1, 6, "Version")


def test_bitfield_maps_id_n_to_bit_n_minus_one() -> None:
    writer = BitWriter()
    writer.write_bitfield({1, 3, 24}, 24, "PurposesConsent")
    assert writer.bits == "101" + "0" * 20 + "1"
    assert BitReader(writer.bits).read_bitfield(24, "x") == {1, 3, 24}
    with pytest.raises(ValueError, match="id 25 is outside 1..24"):
        BitWriter().write_bitfield({25}, 24, "PurposesConsent")


def test_letters_are_six_bits_with_a_as_zero_and_reject_non_letters() -> None:
    writer = BitWriter()
    writer.write_letters("en", 2, "ConsentLanguage")
    assert writer.bits == format(4, "06b") + format(13, "06b")
    assert BitReader(writer.bits).read_letters(2, "x") == "EN"
    with pytest.raises(ValueError, match="ConsentLanguage"):
        BitWriter().write_letters("E1", 2, "ConsentLanguage")
    with pytest.raises(_Boom, match="value 26 is not a letter"):
        BitReader(format(26, "06b"), error=_Boom).read_letters(1, "PublisherCC")


def test_pad_to_appends_zeros_up_to_the_next_multiple() -> None:
    writer = BitWriter()
    writer.write_int(1, 5, "x")
    writer.pad_to(8)
    assert writer.bits == "00001000"
    writer.pad_to(8)
    assert len(writer) == 8


def test_consecutive_runs_groups_sorted_unique_ids() -> None:
    assert consecutive_runs([7, 1, 2, 3, 3, 9, 10]) == [(1, 3), (7, 7), (9, 10)]
    assert consecutive_runs([]) == []
