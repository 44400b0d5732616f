"""The fast path of a plain permission change (``api/fastpaths.py``) answers as the route does.

Each change goes once to the whole app (fast path first) and once, on a twin subject in the
same state, to FastAPI alone (the route without the fast path in front), with the clock held
still: status, media type and body bytes must be the same once each body's own event id is
set aside. The fast path must also really answer the common case, write exactly what the route
writes, and leave everything else (errors and credentials included) to the route.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from consentry.api.fastpaths import PermissionPutFastPath, plain_change
from consentry.api.schemas import PermissionIn
from consentry.app import ConsentryAPI, create_app
from consentry.bootstrap import Container
from consentry.services.ledger import verify
from consentry.storage.database import WRITER_APPLICATION_NAME
from support import bearer

NOW = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)


@pytest.fixture
def apps(container: Container) -> Iterator[tuple[TestClient, TestClient, PermissionPutFastPath]]:
    container.consents.clock = container.queries.clock = lambda: NOW
    app = create_app(container)
    assert isinstance(app, ConsentryAPI)
    with TestClient(app) as full, TestClient(partial(FastAPI.__call__, app)) as routes:
        assert app.put_path is not None
        yield full, routes, app.put_path


@pytest.fixture
def key(container: Container) -> dict[str, str]:
    return bearer(container.keys.create(["subjects:write"]))


def _event_id(answer: Any) -> bytes:
    if answer.status_code != 200:
        return b"-"
    return str(answer.json()["event_id"]).encode()


def twins(
    full: TestClient,
    routes: TestClient,
    pid: str,
    headers: dict[str, str],
    *,
    n: int,
    **kw: Any,
) -> Any:
    """The same PUT on subject f-n through the whole app and on r-n through the route."""
    a = full.put(f"/v1/subjects/f-{n}/permissions/{pid}", headers=headers, **kw)
    b = routes.put(f"/v1/subjects/r-{n}/permissions/{pid}", headers=headers, **kw)
    assert a.status_code == b.status_code
    assert a.content.replace(_event_id(a), b"E") == b.content.replace(_event_id(b), b"E")
    assert a.headers["content-type"] == b.headers["content-type"]
    return a


PLAIN = [
    ("recs", {"state": "granted", "notice_version": "2"}),
    (
        "recs",
        {"state": "granted", "notice_version": "2"},
    ),  # the same again: no event, the earlier one's id
    ("recs", {"state": "denied"}),
    ("recs", {"state": "granted", "notice_version": "1"}),  # a compatible earlier notice
    ("ads", {"state": "denied", "locale": "fr", "options": {}}),
    ("email", {"state": "granted", "notice_version": "1", "locale": "nl"}),
    ("fraud", {"state": "denied"}),  # an objection to legitimate interest
    ("sale", {"state": "denied", "notice_version": "9"}),  # a refusal of any wording counts
]


def test_plain_changes_get_the_routes_bytes_and_write_what_the_route_writes(
    apps: tuple[TestClient, TestClient, PermissionPutFastPath],
    key: dict[str, str],
    container: Container,
) -> None:
    full, routes, fast = apps
    for pid, body in PLAIN:
        before = fast.answered
        twins(full, routes, pid, key, n=0, json=body)
        assert fast.answered == before + 1
    ledger = {
        side: [
            (e.seq, e.kind, e.permission_id, e.state, e.notice_version, e.locale, e.source)
            for e in container.queries.history(f"{side}-0", limit=50).events
        ]
        for side in ("f", "r")
    }
    assert ledger["f"] == ledger["r"] and len(ledger["f"]) == len(PLAIN) - 1
    views = {
        side: [
            (v.id, v.state, v.effective, v.reason, v.notice_version, v.source)
            for v in container.queries.permissions(f"{side}-0")
        ]
        for side in ("f", "r")
    }
    assert views["f"] == views["r"]
    assert verify(container.db).broken is None


def test_the_fast_path_answers_a_subject_token_and_a_key_alike(
    apps: tuple[TestClient, TestClient, PermissionPutFastPath],
    key: dict[str, str],
    container: Container,
) -> None:
    full, _, fast = apps
    before = fast.answered
    token = bearer(container.tokens.issue("f-1"))
    by_subject = full.put(
        "/v1/subjects/f-1/permissions/recs",
        json={"state": "granted", "notice_version": "2"},
        headers=token,
    )
    by_key = full.put("/v1/subjects/f-1/permissions/ads", json={"state": "denied"}, headers=key)
    assert (by_subject.status_code, by_key.status_code) == (200, 200)
    assert fast.answered == before + 2
    sources = {e.permission_id: e.source for e in container.queries.history("f-1").events}
    assert sources == {"recs": "web", "ads": "api"}
    # The security headers and the metrics apply as on every route.
    assert by_key.headers["cache-control"] == "no-store"
    admin = bearer(container.keys.create(["admin"]))
    metrics = full.get("/metrics", headers=admin).text
    assert 'method="PUT",route="/v1/subjects/{sid}/permissions/{pid}",status="200"' in metrics


@pytest.mark.parametrize(
    ("pid", "payload", "extra"),
    [
        ("recs", b"{not json", {}),
        ("recs", b"", {}),
        ("recs", json.dumps({"state": "maybe"}).encode(), {}),
        ("recs", json.dumps({"state": "granted", "notice_version": "2", "x": 1}).encode(), {}),
        (
            "recs",
            json.dumps({"state": "granted", "notice_version": "2", "options": {"k": "v"}}).encode(),
            {},
        ),
        (
            "recs",
            json.dumps({"state": "granted", "notice_version": "2", "duration": "once"}).encode(),
            {},
        ),
        ("recs", json.dumps({"state": "granted", "notice_version": "2", "days": 30}).encode(), {}),
        (
            "recs",
            json.dumps({"state": "granted", "notice_version": "2", "locale": "FR"}).encode(),
            {},
        ),
        ("recs", json.dumps({"state": "granted", "notice_version": ""}).encode(), {}),
        ("recs", json.dumps({"state": "granted", "notice_version": 2}).encode(), {}),
        ("recs", json.dumps(["granted"]).encode(), {}),
        (
            "recs",
            json.dumps({"state": "granted", "notice_version": "2"}).encode(),
            {"content-type": "text/plain"},
        ),
        ("nope", json.dumps({"state": "denied"}).encode(), {}),  # unknown: 404
        ("orders", json.dumps({"state": "denied"}).encode(), {}),  # contract: 409
        ("ads", json.dumps({"state": "granted", "notice_version": "1"}).encode(), {}),  # 409
        (
            "recs",
            json.dumps({"state": "granted", "notice_version": "2"}).encode(),
            {"sec-gpc": "1"},
        ),
    ],
)
def test_what_the_fast_path_cannot_answer_gets_the_routes_answer(
    apps: tuple[TestClient, TestClient, PermissionPutFastPath],
    key: dict[str, str],
    pid: str,
    payload: bytes,
    extra: dict[str, str],
) -> None:
    full, routes, fast = apps
    before = fast.answered
    headers = {"content-type": "application/json", **key, **extra}
    twins(full, routes, pid, headers, n=2, content=payload)
    assert fast.answered == before


def test_a_change_with_an_idempotency_key_goes_to_the_route(
    apps: tuple[TestClient, TestClient, PermissionPutFastPath], key: dict[str, str]
) -> None:
    full, _, fast = apps
    before = fast.answered
    headers = {**key, "Idempotency-Key": "k-1"}
    first = full.put(
        "/v1/subjects/f-4/permissions/recs",
        json={"state": "granted", "notice_version": "2"},
        headers=headers,
    )
    again = full.put(
        "/v1/subjects/f-4/permissions/recs",
        json={"state": "granted", "notice_version": "2"},
        headers=headers,
    )
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert fast.answered == before


@pytest.mark.parametrize(
    "credential",
    ["none", "unknown key", "revoked key", "key without subjects:write", "other subject's token"],
)
def test_credentials_the_fast_path_does_not_accept_get_the_routes_answer(
    apps: tuple[TestClient, TestClient, PermissionPutFastPath],
    container: Container,
    credential: str,
) -> None:
    full, routes, fast = apps
    revoked = container.keys.create(["subjects:write"])
    assert twins(
        full, routes, "recs", bearer(revoked), n=3, json={"state": "granted", "notice_version": "2"}
    )
    container.keys.revoke(revoked.split("_")[1])
    headers = {
        "none": {},
        "unknown key": bearer("csk_" + "0" * 40),
        "revoked key": bearer(revoked),
        "key without subjects:write": bearer(container.keys.create(["decide", "subjects:read"])),
        "other subject's token": bearer(container.tokens.issue("someone-else")),
    }[credential]
    before = fast.answered
    for _ in range(2):
        answer = twins(full, routes, "recs", headers, n=3, json={"state": "denied"})
        assert answer.status_code in (401, 403, 404)
    assert fast.answered == before
    assert [e.state for e in container.queries.history("f-3").events] == ["granted"]


names = st.one_of(
    st.text(max_size=3),
    st.text(min_size=39, max_size=41),
    st.sampled_from(["\ud800", "é", "fr", "nl", "FR", "f", "", "granted", "denied"]),
)
values: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.integers(),
    st.booleans(),
    names,
    st.dictionaries(names, st.integers(), max_size=1),
    st.lists(names, max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    body=st.one_of(
        st.dictionaries(
            st.sampled_from(
                ["state", "options", "notice_version", "locale", "days", "duration", "x"]
            ),
            values,
        ),
        values,
    )
)
def test_plain_change_accepts_only_what_permission_in_accepts_with_the_same_values(
    body: Any,
) -> None:
    found = plain_change(body)
    if found is None:
        return
    model = PermissionIn.model_validate(body)
    assert model.options == {} and model.expires_at is None
    assert model.duration is None and model.days is None
    state, version, locale = found
    assert (state.value, version, locale) == (model.state, model.notice_version, model.locale)


def test_plain_change_refuses_what_permission_in_refuses() -> None:
    for bad in [
        {"state": "granted", "notice_version": "v" * 41},
        {"state": "granted", "notice_version": "\ud800"},
        {"state": "granted", "notice_version": "2", "locale": "fra"},
        {"state": "granted", "notice_version": "2", "options": []},
        {"state": None},
    ]:
        assert plain_change(bad) is None
        with pytest.raises(ValidationError):
            PermissionIn.model_validate(bad)


def _states(container: Container, subject: str) -> list[str]:
    """The states the subject's events recorded, oldest first."""
    events = sorted(container.queries.history(subject).events, key=lambda e: e.seq)
    return [e.state for e in events]


def test_plain_changes_are_written_from_the_event_loop_through_the_group_commit(
    apps: tuple[TestClient, TestClient, PermissionPutFastPath],
    key: dict[str, str],
    container: Container,
) -> None:
    full, _, fast = apps
    before, batched = fast.answered, container.db.batcher().changes
    for state in ("granted", "denied"):
        answer = full.put(
            "/v1/subjects/f-9/permissions/recs",
            json={"state": state, "notice_version": "2"},
            headers=key,
        )
        assert answer.status_code == 200 and answer.json()["state"] == state
    assert fast.answered == before + 2
    assert container.db.batcher().changes == batched + 2
    assert _states(container, "f-9") == ["granted", "denied"]


def _terminate_writer_connections(container: Container) -> int:
    name = f"{WRITER_APPLICATION_NAME}-{os.getpid()}"
    with container.db.write() as conn:
        return len(
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE application_name = '{name}'"
            ).all()
        )


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # named connections
def test_a_lost_writer_connection_leaves_the_change_to_the_route_and_is_replaced(
    apps: tuple[TestClient, TestClient, PermissionPutFastPath],
    key: dict[str, str],
    container: Container,
) -> None:
    assert container.db.dialect == "postgresql"
    full, _, fast = apps
    url = "/v1/subjects/f-10/permissions/recs"
    assert (
        full.put(url, json={"state": "granted", "notice_version": "2"}, headers=key).status_code
        == 200
    )
    assert _terminate_writer_connections(container) >= 1
    before = fast.answered
    lost = full.put(url, json={"state": "denied"}, headers=key)
    assert lost.status_code == 200 and lost.json()["state"] == "denied"
    assert fast.answered == before  # the route answered
    again = full.put(url, json={"state": "granted", "notice_version": "2"}, headers=key)
    assert again.status_code == 200 and fast.answered == before + 1  # a new connection
    assert _states(container, "f-10") == ["granted", "denied", "granted"]
