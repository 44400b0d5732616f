"""The SDK against an in-memory server (httpx.MockTransport): no sockets, no threads timing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from consentry.catalogue_io import load_catalogue
from consentry.domain.compiled import CompiledCatalogue
from consentry.replica import wire
from consentry.sdk import (
    AuthenticationError,
    Check,
    Consentry,
    Decision,
    Denied,
    PermissionDenied,
    ProtocolError,
    Reason,
    TransportError,
)
from support import MINI

KEY = "csk_test_key"
COMPILED = CompiledCatalogue(load_catalogue(MINI))


class FakeServer:
    """Enough of /v1/snapshot and /v1/changes to drive a client."""

    def __init__(self) -> None:
        # subject -> (seq, jurisdiction, [(permission, state, notice version, expires)])
        self.subjects: dict[str, tuple[int, str | None, list[Any]]] = {}
        self.changes: list[dict[str, Any]] = []
        self.snapshots = 0
        self.fail_with: int | None = None  # status for every request while set
        self.down = False  # raise a connection error
        self.truncate = False
        self.expire_cursor_once = False

    def grant(self, subject: str, permission: str, seq: int, state: str = "granted") -> None:
        version = COMPILED.permissions[COMPILED.bit[permission]].notice.version
        self.changes.append(
            {
                "subject": subject,
                "seq": seq,
                "kind": f"permission_{state}",
                "permission": permission,
                "state": state,
                "notice_version": version,
                "expires_at": None,
            }
        )

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return problem(401, "unknown or revoked API key")
        if self.fail_with is not None:
            return problem(self.fail_with, "nope")
        if request.url.path == "/v1/snapshot":
            return self.snapshot()
        if request.url.path == "/v1/changes":
            return self.feed(int(request.url.params["after"]))
        return problem(404, "no such route")

    def snapshot(self) -> httpx.Response:
        self.snapshots += 1
        lines = [wire.header_line(COMPILED, str(len(self.changes)), len(self.subjects))]
        for subject, (seq, jurisdiction, choices) in sorted(self.subjects.items()):
            lines.append(wire.subject_line(COMPILED, subject, seq, jurisdiction, choices))
        if not self.truncate:
            lines.append(wire.trailer_line(len(self.subjects)))
        return httpx.Response(200, text="\n".join(lines) + "\n")

    def feed(self, after: int) -> httpx.Response:
        if self.expire_cursor_once:
            self.expire_cursor_once = False
            return problem(410, "cursor not within the feed")
        body = "".join(
            wire.change_line(str(i), json.dumps(c)) + "\n"
            for i, c in enumerate(self.changes, start=1)
            if i > after
        )
        return httpx.Response(
            200, text=body, headers={wire.CURSOR_HEADER: str(max(after, len(self.changes)))}
        )


def problem(status: int, detail: str) -> httpx.Response:
    return httpx.Response(status, json={"status": status, "title": "x", "detail": detail})


@pytest.fixture
def server() -> FakeServer:
    fake = FakeServer()
    fake.subjects["s1"] = (1, None, [("recs", "granted", "2", None)])
    fake.subjects["ca"] = (0, "US-CA", [])
    return fake


def client(server: FakeServer, **kw: Any) -> Consentry:
    kw.setdefault("follow", False)
    return Consentry(
        "http://consentry.example", api_key=KEY, transport=httpx.MockTransport(server.handler), **kw
    )


def test_client_starts_from_the_snapshot(server: FakeServer) -> None:
    with client(server) as c:
        assert c.subjects == 2
        assert c.check("s1", "recommendations", ["behaviour.browsing"]) == Decision(
            True, Reason.CONSENT, "recs"
        )
        assert c.allows("ca", "sale", "behaviour.purchases")  # US-CA opt-out default
        assert not c.allows("s2", "recommendations", ["behaviour.browsing"])


def test_changes_from_the_feed_apply_in_order(server: FakeServer) -> None:
    with client(server) as c:
        server.grant("s1", "recs", 2, "denied")
        server.grant("s2", "recs", 1)
        assert c.sync() == 2
        assert c.cursor == "2"
        assert not c.allows("s1", "recommendations", "behaviour.browsing")
        assert c.allows("s2", "recommendations", "behaviour.browsing")
        assert c.sync() == 0 and c.cursor == "2"


def test_a_bad_key_fails_at_construction(server: FakeServer) -> None:
    with pytest.raises(AuthenticationError) as caught:
        Consentry(
            "http://consentry.example",
            api_key="csk_wrong",
            transport=httpx.MockTransport(server.handler),
        )
    assert caught.value.status == 401 and "revoked" in str(caught.value)


def test_a_key_without_the_decide_scope_is_permission_denied(server: FakeServer) -> None:
    server.fail_with = 403
    with pytest.raises(PermissionDenied):
        client(server)


def test_an_unreachable_server_fails_at_construction(server: FakeServer) -> None:
    server.down = True
    with pytest.raises(TransportError):
        client(server)


def test_a_truncated_snapshot_is_refused(server: FakeServer) -> None:
    server.truncate = True
    with pytest.raises(ProtocolError, match="truncated"):
        client(server)


def test_losing_contact_fails_closed_and_contact_restores(server: FakeServer) -> None:
    with client(server, stale_after=0.05) as c:
        c._replica.fresh_until = 0.0  # as if the bound passed without contact
        assert c.stale
        assert c.check("s1", "recommendations", "behaviour.browsing") == Decision(
            False, Reason.STALE_REPLICA, "recs"
        )
        # Contract permissions do not depend on choices: still answered.
        assert c.allows("s1", "order_fulfilment", "order.address", "carrier")
        server.down = True
        with pytest.raises(TransportError):
            c.sync()
        assert c.stale
        server.down = False
        c.sync()
        assert not c.stale and c.allows("s1", "recommendations", "behaviour.browsing")


def test_a_cursor_too_old_reloads_the_snapshot(server: FakeServer) -> None:
    with client(server, follow=True, poll_wait=0.01) as c:
        server.subjects["s3"] = (1, None, [("recs", "granted", "2", None)])
        server.expire_cursor_once = True
        assert _eventually(lambda: c.subjects == 3)
        assert server.snapshots >= 2 and c.allows("s3", "recommendations", "behaviour.browsing")


def test_a_gap_in_a_subjects_events_reloads_the_snapshot(server: FakeServer) -> None:
    with client(server, follow=True, poll_wait=0.01) as c:
        server.subjects["s1"] = (3, None, [])
        server.grant("s1", "recs", 3, "denied")  # seq 2 never arrives
        assert _eventually(lambda: server.snapshots >= 2)
        assert _eventually(lambda: not c.allows("s1", "recommendations", "behaviour.browsing"))


def test_check_many_takes_tuples_checks_and_dicts(server: FakeServer) -> None:
    with client(server) as c:
        results = c.check_many(
            [
                ("s1", "recommendations", ["behaviour.browsing"]),
                Check("s2", "recommendations", "behaviour.browsing"),
                {"subject": "ca", "purpose": "sale", "categories": ["behaviour.purchases"]},
            ]
        )
    assert [r.allowed for r in results] == [True, False, True]


def test_requires_runs_the_function_only_when_allowed(server: FakeServer) -> None:
    with client(server) as c:

        @c.requires(purpose="recommendations", categories=["behaviour.browsing"])
        def recommend(subject: str, limit: int = 3) -> list[str]:
            return ["p"] * limit

        assert recommend("s1") == ["p", "p", "p"]
        with pytest.raises(Denied) as caught:
            recommend(subject="s2")
        assert caught.value.decision.reason is Reason.NO_CONSENT


def test_requires_guards_coroutines_and_other_argument_names(server: FakeServer) -> None:
    with client(server) as c:

        @c.requires("recommendations", ["behaviour.browsing"], subject="user")
        async def recommend(user: str) -> str:
            return user

        assert asyncio.run(recommend("s1")) == "s1"
        with pytest.raises(Denied):
            asyncio.run(recommend("s2"))
        with pytest.raises(TypeError, match="no argument named 'subject'"):
            c.requires("recommendations", ["behaviour.browsing"])(lambda user: user)


def test_close_is_idempotent_and_the_client_is_a_context_manager(server: FakeServer) -> None:
    c = client(server, follow=True, poll_wait=0.01)
    with c as same:
        assert same is c
    c.close()
    assert not c._follower._thread.is_alive()


def _eventually(condition: Any, timeout: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())
