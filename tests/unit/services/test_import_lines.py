"""Reading a JSON Lines file of records: each line's fields or the reason it has none, with
its number, whatever the spacing."""

from __future__ import annotations

import io

from consentry.services.import_lines import lines


def read(data: bytes) -> list[tuple[int, object]]:
    return [(number, found) for number, found, _ in lines(io.BytesIO(data), "jsonl", None)]


def test_lines_give_their_fields_and_number_and_blank_lines_are_skipped() -> None:
    data = b'\xef\xbb\xbf{"a": 1}\n\n   \n  {"b": "x"}  \r\n{"c": [1, {"d": null}]}'
    assert read(data) == [(1, {"a": 1}), (4, {"b": "x"}), (5, {"c": [1, {"d": None}]})]


def test_a_bad_line_says_why_with_its_number() -> None:
    data = b'{"a": 1} x\n{not json\n[1, 2]\n"text"\n{"a": "\xff"}\n{"a": 2}\n'
    found = read(data)
    assert [number for number, _ in found] == [1, 2, 3, 4, 5, 6]
    assert str(found[0][1]).startswith("not valid JSON (Extra data at column 10")
    assert str(found[1][1]).startswith("not valid JSON (Expecting property name")
    assert found[2][1] == found[3][1] == "a line must be a JSON object"
    assert found[4][1] == "not valid UTF-8"
    assert found[5] == (6, {"a": 2})


def test_a_bad_line_keeps_its_text_for_the_rejects_file() -> None:
    ((_, _, raw),) = lines(io.BytesIO(b"{oops\n"), "jsonl", None)
    assert raw == b"{oops\n"
