"""The decision endpoints' fast path (``api/fastpaths.py``) answers exactly as the routes do.

Each request goes to the whole app (fast path first) and to FastAPI alone (the routes, without
the fast path in front); status, body bytes and media type must be the same. The fast path
must also really answer the common case, and leave everything else to the route.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from consentry.api.fastpaths import valid_check
from consentry.api.schemas import DecisionIn
from consentry.app import ConsentryAPI, create_app
from consentry.bootstrap import Container
from support import bearer

SUBJECTS = ["s-granted", "s-denied", "s-never", "s-ca"]
PURPOSES = ["recommendations", "advertising", "sale", "marketing.email", "fraud_prevention", "nope"]
CATEGORIES = ["behaviour.browsing", "behaviour.purchases", "profile.contact", "device.camera", "x"]
RECIPIENTS = [None, "shop", "adnet", "buyer", "nobody"]


@pytest.fixture
def apps(container: Container) -> Iterator[tuple[TestClient, TestClient, ConsentryAPI]]:
    app = create_app(container)
    assert isinstance(app, ConsentryAPI)
    with TestClient(app) as full, TestClient(partial(FastAPI.__call__, app)) as routes:
        yield full, routes, app


@pytest.fixture
def key(container: Container) -> dict[str, str]:
    return bearer(container.keys.create(["decide", "subjects:write"]))


@pytest.fixture
def warm(
    apps: tuple[TestClient, TestClient, ConsentryAPI], key: dict[str, str], container: Container
) -> tuple[TestClient, TestClient, ConsentryAPI]:
    full = apps[0]
    full.put(
        "/v1/subjects/s-granted/permissions/recs",
        json={"state": "granted", "notice_version": "2"},
        headers=key,
    )
    full.put("/v1/subjects/s-denied/permissions/ads", json={"state": "denied"}, headers=key)
    container.rights.set_jurisdiction("s-ca", "US-CA")
    # The first decision loads the replica and verifies the key (the route does both).
    full.post("/v1/decisions", json=check("s-never"), headers=key)
    assert container.replica.wait_ready()
    return apps


def check(subject: str, purpose: str = "recommendations", **kw: Any) -> dict[str, Any]:
    return {"subject": subject, "purpose": purpose, "categories": ["behaviour.browsing"], **kw}


def same(
    full: TestClient, routes: TestClient, path: str, headers: dict[str, str], **kw: Any
) -> Any:
    a = full.post(path, headers=headers, **kw)
    b = routes.post(path, headers=headers, **kw)
    assert (a.status_code, a.content) == (b.status_code, b.content)
    assert a.headers["content-type"] == b.headers["content-type"]
    return a


checks = st.builds(
    lambda s, p, cs, r: {"subject": s, "purpose": p, "categories": cs, "recipient": r},
    st.sampled_from(SUBJECTS),
    st.sampled_from(PURPOSES),
    st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3),
    st.sampled_from(RECIPIENTS),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(checks, min_size=1, max_size=8))
def test_fast_path_answers_byte_for_byte_as_the_routes(
    warm: tuple[TestClient, TestClient, ConsentryAPI], key: dict[str, str], batch: list[Any]
) -> None:
    full, routes, _ = warm
    same(full, routes, "/v1/decisions/batch", key, json={"checks": batch})
    for item in batch[:2]:
        same(full, routes, "/v1/decisions", key, json=item)


def test_the_fast_path_answers_the_common_case_itself(
    warm: tuple[TestClient, TestClient, ConsentryAPI], key: dict[str, str]
) -> None:
    full, _, app = warm
    fast = app.fast_path
    assert fast is not None
    before = fast.answered
    answer = full.post("/v1/decisions", json=check("s-granted", recipient="shop"), headers=key)
    assert answer.json() == {
        "allowed": True,
        "reason": "consent",
        "permission": "recs",
    }
    batch = {"checks": [check("s-denied", "advertising"), check("s-never")]}
    assert full.post("/v1/decisions/batch", json=batch, headers=key).status_code == 200
    assert fast.answered == before + 3
    # The security headers and the metrics apply as on every route.
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    metrics = full.get("/metrics", headers=bearer(app_admin_key(app))).text
    assert 'route="/v1/decisions",status="200"' in metrics
    assert 'route="/v1/decisions/batch",status="200"' in metrics


def app_admin_key(app: ConsentryAPI) -> str:
    container: Container = app.state.container
    return container.keys.create(["admin"])


@pytest.mark.parametrize(
    ("path", "payload", "content_type"),
    [
        ("/v1/decisions", b"{not json", "application/json"),
        ("/v1/decisions", json.dumps({**check("s"), "extra": 1}).encode(), "application/json"),
        ("/v1/decisions", json.dumps({**check("s"), "categories": []}).encode(), None),
        ("/v1/decisions", json.dumps(check("s" * 201)).encode(), "application/json"),
        ("/v1/decisions", json.dumps(check("s")).encode(), "text/plain"),
        ("/v1/decisions", json.dumps(check("s", device="d1")).encode(), "application/json"),
        ("/v1/decisions", json.dumps({**check("s"), "subject": 5}).encode(), "application/json"),
        ("/v1/decisions", b'{"subject": "\\ud800", "purpose": "sale", "categories": ["x"]}', None),
        ("/v1/decisions", b"", "application/json"),
        ("/v1/decisions/batch", json.dumps({"checks": []}).encode(), "application/json"),
        ("/v1/decisions/batch", json.dumps({"checks": [check("s")] * 1001}).encode(), None),
        ("/v1/decisions/batch", json.dumps({"checks": [check("s")], "x": 1}).encode(), None),
        ("/v1/decisions/batch", json.dumps([check("s")]).encode(), "application/json"),
    ],
)
def test_what_the_fast_path_cannot_answer_gets_the_routes_answer(
    warm: tuple[TestClient, TestClient, ConsentryAPI],
    key: dict[str, str],
    path: str,
    payload: bytes,
    content_type: str | None,
) -> None:
    full, routes, app = warm
    assert app.fast_path is not None
    before = app.fast_path.answered
    headers = {**key, **({"content-type": content_type} if content_type else {})}
    same(full, routes, path, headers, content=payload)
    assert app.fast_path.answered == before


@pytest.mark.parametrize(
    "credential", ["none", "unknown key", "subject token", "key without decide"]
)
def test_credentials_the_fast_path_does_not_know_get_the_routes_answer(
    warm: tuple[TestClient, TestClient, ConsentryAPI], container: Container, credential: str
) -> None:
    full, routes, _ = warm
    headers = {
        "none": {},
        "unknown key": bearer("csk_" + "0" * 40),
        "subject token": bearer(container.tokens.issue("s-never")),
        "key without decide": bearer(container.keys.create(["subjects:read"])),
    }[credential]
    for _ in range(2):  # the second time too: failures are never remembered
        answer = same(full, routes, "/v1/decisions", headers, json=check("s-never"))
        assert answer.status_code in (401, 403)


names = st.one_of(
    st.text(max_size=3),
    st.text(min_size=99, max_size=102),
    st.sampled_from(["\ud800", "é", "sale", ""]),
)
values: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.integers(), st.booleans(), names, st.lists(names, max_size=3)
)


@settings(max_examples=400, deadline=None)
@given(
    item=st.one_of(
        st.dictionaries(
            st.sampled_from(["subject", "purpose", "categories", "recipient", "device", "x"]),
            values,
        ),
        values,
    )
)
def test_valid_check_accepts_only_what_decision_in_accepts_with_the_same_values(
    item: Any,
) -> None:
    found = valid_check(item)
    if found is None:
        return
    model = DecisionIn.model_validate(item)
    assert model.device is None
    assert found == (model.subject, model.purpose, tuple(model.categories), model.recipient)


def test_valid_check_refuses_what_decision_in_refuses() -> None:
    for bad in [
        {"subject": "s", "purpose": "p", "categories": ["a"] * 51},
        {"subject": "s", "purpose": "p" * 101, "categories": ["a"]},
        {"subject": "\ud800", "purpose": "p", "categories": ["a"]},
        {"subject": "s", "purpose": "p", "categories": "a"},
    ]:
        assert valid_check(bad) is None
        with pytest.raises(ValidationError):
            DecisionIn.model_validate(bad)
