"""The import's reader, in a process of its own and in a thread: batches in the order of the
file, refused lines with their numbers, and a failure that comes out as an error naming its
cause."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consentry.domain.catalogue import Catalogue
from consentry.domain.imports import Checker
from consentry.services.import_reader import Reader, ReaderFailed
from import_support import broken_expand

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def good(**extra: object) -> dict[str, object]:
    return {
        "subject": "cust-1",
        "permission": "recs",
        "state": "granted",
        "time": "2025-03-01T10:00:00Z",
        "notice_version": "2",
        **extra,
    }


@pytest.fixture
def checker(mini_catalogue: Catalogue) -> Checker:
    return Checker({p.id: p for p in mini_catalogue.permissions}, NOW, "legacy")


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


@pytest.mark.parametrize("own_process", [True, False], ids=["process", "thread"])
def test_batches_follow_the_file_with_refused_lines_numbered(
    checker: Checker, tmp_path: Path, own_process: bool
) -> None:
    lines: list[object] = [good(subject=f"cust-{i}") for i in range(7)]
    lines.insert(2, "{not json")
    lines.insert(5, good(permission="nope"))
    path = write_lines(tmp_path / "r.jsonl", lines)
    with Reader(path, "jsonl", None, checker, size=3, own_process=own_process) as reader:
        batches = list(reader)
    records = [r for b in batches for r in b.records]
    assert [r.subject for r in records] == [f"cust-{i}" for i in range(7)]
    assert [r.line for r in records] == [1, 2, 4, 5, 7, 8, 9]
    refused = [(number, reason) for b in batches for number, reason, _ in b.refused]
    assert [number for number, _ in refused] == [3, 6]
    assert "nope" in refused[1][1]
    assert all(len(b.records) + len(b.refused) <= 3 for b in batches)
    assert batches[-1].position == path.stat().st_size
    positions = [b.position for b in batches]
    assert positions == sorted(positions)


@pytest.mark.parametrize("own_process", [True, False], ids=["process", "thread"])
def test_a_failure_while_reading_is_raised_with_its_cause(
    checker: Checker, tmp_path: Path, own_process: bool
) -> None:
    path = write_lines(tmp_path / "r.jsonl", [good()])
    with Reader(path, "jsonl", broken_expand, checker, 10, own_process=own_process) as reader:
        with pytest.raises(ReaderFailed, match="KeyError"):
            list(reader)


def test_a_reader_left_early_stops(checker: Checker, tmp_path: Path) -> None:
    """The writing side fails after the first batch: leaving the reader ends its thread."""
    path = write_lines(tmp_path / "r.jsonl", [good(subject=f"c-{i}") for i in range(50)])
    reader = Reader(path, "jsonl", None, checker, 5, own_process=False)
    with reader:
        next(iter(reader))
    assert not reader.alive
