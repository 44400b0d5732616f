"""The replica's row stores: subject id -> (state, seq), compiled and pure Python, alike."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.replica.rows import COMPILED, PyRows, Rows, new_rows, rows_iter
from consentry.replica.table import SubjectTable
from replica_support import CATALOGUE, ROWS, new_replica

IDS = [f"user-{i}" for i in range(5000)] + ["émile@example.org", "用户-1", "", "x" * 200]


@pytest.fixture(params=ROWS)
def rows(request: pytest.FixtureRequest) -> Rows:
    return new_rows(4, 192, compiled=request.param)


def test_rows_find_every_subject_after_growing(rows: Rows) -> None:
    handles = [rows.add(s, i, i + 1) for i, s in enumerate(IDS)]
    assert len(rows) == len(IDS) and len(set(handles)) == len(IDS)
    for i, (s, h) in enumerate(zip(IDS, handles, strict=True)):
        assert rows.find(s) == h and rows.lookup(s, -1) == i
        assert (rows.state(h), rows.seq(h), rows.subject(h)) == (i, i + 1, s)
    assert rows.find("user-5000") == -1 and rows.lookup("user-5000", -7) == -7


def test_rows_compare_ids_not_hashes(rows: Rows) -> None:
    rows.add("user-1", 1, 1)
    assert rows.find("user-10") == -1 and rows.find("user-") == -1 and rows.find("") == -1


class _SameHash(str):
    """An id whose hash collides with every other one's (as a crafted id's might)."""

    def __hash__(self) -> int:
        return 42


def test_rows_tell_ids_with_the_same_hash_apart(rows: Rows) -> None:
    first, second = _SameHash("user-1"), _SameHash("user-2")
    a, b = rows.add(first, 10, 1), rows.add(second, 20, 1)
    assert a != b and (rows.find(second), rows.find(first)) == (b, a)
    assert rows.lookup(second, 0) == 20 and rows.find(_SameHash("user-3")) == -1


def test_adding_a_present_subject_updates_its_row(rows: Rows) -> None:
    row = rows.add("user-1", 1, 1)
    assert rows.add("user-1", 2, 5) == row and len(rows) == 1
    rows.set(row, 3, 6)
    assert (rows.lookup("user-1", 0), rows.seq(row)) == (3, 6)


def test_rows_iterate_in_insertion_order(rows: Rows) -> None:
    assert list(rows_iter(rows)) == []
    handles = [rows.add(s, 0, 0) for s in ("c", "a", "b")]
    assert list(rows_iter(rows)) == handles


def test_states_wider_than_64_bits_are_kept_whole(rows: Rows) -> None:
    wide = (1 << 130) | 12345
    rows.add("user-1", wide, 4_294_967_295)
    assert rows.lookup("user-1", 0) == wide and rows.seq(rows.find("user-1")) == 4_294_967_295


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=30), st.integers(0, 1 << 70)), max_size=300))
def test_compiled_rows_answer_like_the_python_rows(ops: list[tuple[str, int]]) -> None:
    if COMPILED is None:
        pytest.skip("consentry.replica._rows is not built")
    compiled, python = new_rows(2, 71, compiled=True), PyRows(2)
    for subject, state in ops:
        compiled.add(subject, state, 1)
        python.add(subject, state, 1)
    assert len(compiled) == len(python)
    for subject, _ in ops:
        assert compiled.lookup(subject, -1) == python.lookup(subject, -1)
        assert compiled.subject(compiled.find(subject)) == subject
    assert [compiled.subject(r) for r in rows_iter(compiled)] == [
        python.subject(r) for r in rows_iter(python)
    ]


# -- the compiled rows refuse what would be unsafe ---------------------------------------------
@pytest.fixture
def compiled_rows() -> Rows:
    if COMPILED is None:
        pytest.skip("consentry.replica._rows is not built")
    return new_rows(compiled=True)


def test_compiled_rows_refuse_non_str_subjects_and_non_int_states(compiled_rows: Rows) -> None:
    with pytest.raises(TypeError, match="subject must be str"):
        compiled_rows.lookup(b"user-1", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="state must be int"):
        compiled_rows.add("user-1", "granted", 1)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        compiled_rows.add("user-1", 1, 1 << 32)
    with pytest.raises(OverflowError, match="state must be in"):
        compiled_rows.add("user-1", 1 << 64, 1)  # wider than the 64 bits these rows were made for
    with pytest.raises(OverflowError, match="state must be in"):
        compiled_rows.add("user-1", -1, 1)
    assert len(compiled_rows) == 0


def test_compiled_rows_refuse_a_row_outside_their_records(compiled_rows: Rows) -> None:
    compiled_rows.add("user-1", 1, 1)
    for bad in (-1, 10_000, 1 << 40):
        with pytest.raises(IndexError):
            compiled_rows.state(bad)
        with pytest.raises(IndexError):
            compiled_rows.set(bad, 1, 1)


def test_compiled_rows_refuse_ids_that_do_not_encode(compiled_rows: Rows) -> None:
    with pytest.raises(UnicodeEncodeError):
        compiled_rows.add("user-\ud800", 1, 1)


def test_the_pure_python_table_still_grows_with_a_small_front_cache() -> None:
    table = SubjectTable(capacity=4, front_cache=8)
    rows = [table.add(s) for s in IDS]
    assert rows == list(range(len(IDS))) and all(table.find(s) == i for i, s in enumerate(IDS))


def stamp(posix: float) -> str:
    return datetime.fromtimestamp(posix, UTC).isoformat()


# -- allows() is check().allowed, on the fast path and off it ----------------------------------
@pytest.mark.parametrize("compiled_rows", ROWS)
def test_allows_answers_like_check_on_a_random_workload(compiled_rows: bool) -> None:
    rng = random.Random(5)
    replica = new_replica(compiled_rows)
    toggleable = [p for p in CATALOGUE.permissions if p.toggleable]
    now = time.time()
    for n in range(300):
        subject = f"user-{n}"
        # Jurisdictions first met after the fast path was built extend its verdict table.
        replica.set_jurisdiction(subject, rng.choice([None, "BE", "US-CA", "US"]))
        for seq, perm in enumerate(rng.sample(toggleable, 3), start=replica.seq(subject) + 1):
            expires = rng.choice([None, None, now - 60, now + 3600])
            replica.apply(
                {
                    "subject": subject,
                    "seq": seq,
                    "kind": "permission_granted",
                    "permission": perm.id,
                    "state": "granted",
                    "notice_version": perm.notice.version,
                    "expires_at": (
                        None
                        if expires is None
                        else datetime.fromtimestamp(expires, UTC).isoformat()
                    ),
                }
            )
    purposes, categories = list(CATALOGUE.purposes), list(CATALOGUE.categories)
    recipients = [None, *CATALOGUE.recipients]
    checked = 0
    for _ in range(10_000):
        args = (
            f"user-{rng.randrange(330)}",
            rng.choice(purposes),
            rng.choice(
                [
                    rng.choice(categories),
                    tuple(rng.sample(categories, 2)),
                    rng.sample(categories, 2),
                ]
            ),
            rng.choice(recipients),
        )
        assert replica.allows(*args) is replica.check(*args).allowed, args
        checked += replica.check(*args).allowed
    assert checked > 100  # the workload allows some requests, not only refusals
    replica.fresh_until = 0.0
    assert not any(
        replica.allows(f"user-{n}", p.purpose, p.categories[0])
        for n in range(300)
        for p in toggleable
    )


@pytest.mark.parametrize("compiled_rows", ROWS)
def test_categories_given_as_a_list_are_answered_without_the_full_check(
    compiled_rows: bool,
) -> None:
    replica = new_replica(compiled_rows)
    perm = next(p for p in CATALOGUE.permissions if p.toggleable)
    replica.apply(
        {
            "subject": "user-1",
            "seq": 1,
            "kind": "permission_granted",
            "permission": perm.id,
            "state": "granted",
            "notice_version": perm.notice.version,
        }
    )
    checked = replica.check
    calls: list[object] = []

    def counted(*args: object) -> object:
        calls.append(args)
        return checked(*args)  # type: ignore[arg-type]

    replica.check = counted  # type: ignore[method-assign,assignment]
    as_list = [perm.categories[0]]
    replica.allows("user-1", perm.purpose, as_list, None)  # plans the request
    calls.clear()
    answers = [replica.allows("user-1", perm.purpose, list(as_list), None) for _ in range(3)]
    assert answers == [checked("user-1", perm.purpose, as_list, None).allowed] * 3
    assert calls == []


def test_the_environment_switch_selects_the_pure_python_rows() -> None:
    probe = (
        "from consentry.replica.rows import COMPILED, new_rows; print(COMPILED, type(new_rows()))"
    )
    env = {**os.environ, "CONSENTRY_PURE_PYTHON": "1"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["None", "<class", "'consentry.replica.rows.PyRows'>"]
