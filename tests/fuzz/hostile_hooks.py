"""Schemathesis hooks (loaded through ``SCHEMATHESIS_HOOKS``): besides the bodies and queries
schemathesis draws from the schema, some cases get hostile variants of them.

- deep nesting: a value of the body replaced by objects or arrays nested 20 to 900 deep (the
  JSON decoder, validation and ``model_dump`` each have a depth they can handle);
- Unicode: strings replaced by noncharacters, NUL, a byte-order mark, bidirectional controls,
  astral characters and long combining text;
- date-times at the edge of the representable range in query strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import strategies as st

# Lone surrogates ("\ud800") are not here: schemathesis re-validates a changed case and its
# validator cannot encode them. tests/security/test_live_limits.py sends them over HTTP.
HOSTILE_TEXT = [
    "\x00",
    "\uffff",
    "\ufeff",
    "\u202e\u2066rtl",
    "\U0001d54f" * 40,
    "é" * 300,
    "e\u0301" * 100,
]
COUNT_FILE = Path("hostile-cases.count")  # in the run's working directory
EDGE_DATES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z"]


def _nested(depth: int, as_list: bool) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if as_list else {"k": value}
    return value


def _replace_strings(value: Any, text: str) -> Any:
    if isinstance(value, str):
        return text
    if isinstance(value, dict):
        return {key: _replace_strings(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_strings(item, text) for item in value]
    return value


def _deepened(body: dict[str, Any]) -> st.SearchStrategy[Any]:
    keys = sorted(body) or ["options"]
    return st.builds(
        lambda key, depth, as_list: {**body, key: _nested(depth, as_list)},
        st.sampled_from(keys),
        st.integers(20, 900),
        st.booleans(),
    )


def _positive(case: Any) -> bool:
    """Only cases schemathesis drew as valid get hostile variants: changing a negative case
    could make it valid, and its acceptance would then be reported as a schema violation."""
    meta = getattr(case, "meta", None)
    mode = getattr(getattr(meta, "generation", None), "mode", None)
    return str(getattr(mode, "value", mode)) == "positive"


def _with_body(case: Any, body: Any) -> Any:
    case.body = body
    with COUNT_FILE.open("a") as count:  # the test checks that hostile cases were sent
        count.write("1")
    return case


@schemathesis.hook
def flatmap_case(context: Any, case: Any) -> st.SearchStrategy[Any]:
    body = getattr(case, "body", None)
    if not isinstance(body, dict) or not _positive(case):
        return st.just(case)
    return st.one_of(
        st.just(case),
        _deepened(body).map(lambda new: _with_body(case, new)),
        st.sampled_from(HOSTILE_TEXT).map(
            lambda text: _with_body(case, _replace_strings(body, text))
        ),
    )


@schemathesis.hook
def flatmap_query(context: Any, query: Any) -> st.SearchStrategy[Any]:
    if not isinstance(query, dict) or not query:
        return st.just(query)
    dated = {key: value for key, value in query.items() if key in ("since", "until", "at")}
    if not dated:
        return st.just(query)
    return st.one_of(
        st.just(query),
        st.sampled_from(EDGE_DATES).map(lambda date: {**query, **dict.fromkeys(dated, date)}),
    )
