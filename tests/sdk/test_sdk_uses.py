"""``Consentry.report_use``: queued, sent in batches by a background thread to POST /v1/uses;
against the real server (SQLite and PostgreSQL) and through an injected transport."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.sdk import Consentry, Denied
from sdk.live import LiveServer, eventually
from sdk.test_sdk_offline import KEY, FakeServer

BROWSING = ["behaviour.browsing"]


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/uses":
            self.batches.append(len(json.loads(request.content)["uses"]))
        return super().handle_request(request)


def reporter(live: LiveServer, **options: Any) -> Consentry:
    key = live.container.keys.create(["decide", "uses:write"], name="recommendations-service")
    return Consentry(live.url, api_key=key, **options)


def test_reported_uses_reach_the_server_in_batches(live_server: LiveServer) -> None:
    live_server.container.consents.change("u1", [Change("recs", ChoiceState.GRANTED)], Context())
    transport = CountingTransport()
    with reporter(live_server, transport=transport, uses_batch=10, uses_flush_every=60.0) as sdk:
        for _ in range(25):
            assert sdk.report_use("u1", "recommendations", BROWSING)
        assert sdk.flush(timeout=10)
        stats = sdk.stats.uses
        assert (stats.reported, stats.sent, stats.queued, stats.violations) == (25, 25, 0, 0)
    assert transport.batches == [10, 10, 5]
    groups, _ = live_server.container.uses.for_subject("u1")
    assert [(g.purpose, g.count, len(g.services)) for g in groups] == [("recommendations", 25, 1)]


def test_flush_answers_false_when_the_key_lacks_the_uses_write_scope(
    live_server: LiveServer,
) -> None:
    key = live_server.container.keys.create(["decide"], name="no-uses-scope")
    with Consentry(live_server.url, api_key=key, uses_flush_every=60.0) as sdk:
        assert sdk.report_use("u1", "recommendations", BROWSING)
        assert sdk.flush(timeout=10) is False
        assert (sdk.stats.uses.rejected, sdk.stats.uses.sent) == (1, 0)


def test_reports_go_out_after_the_flush_interval_without_a_flush(
    live_server: LiveServer,
) -> None:
    with reporter(live_server, uses_flush_every=0.05) as sdk:
        sdk.report_use("u2", "advertising", "behaviour.browsing", recipient="adnet")
        assert eventually(lambda: sdk.stats.uses.sent == 1)
        # No consent to advertising: the server flags the use.
        assert sdk.stats.uses.violations == 1


def test_close_sends_what_is_queued(live_server: LiveServer) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    sdk = reporter(live_server, uses_flush_every=60.0)
    for _ in range(3):
        sdk.report_use("u3", "recommendations", BROWSING, at=at)
    sdk.close()
    _, recent = live_server.container.uses.for_subject("u3")
    assert [r.used_at for r in recent] == [at] * 3


def test_a_denied_check_reported_as_refrained_arrives_and_is_counted_as_refused(
    live_server: LiveServer,
) -> None:
    with reporter(live_server, uses_flush_every=60.0) as sdk:
        decision = sdk.check("u4", "advertising", BROWSING, "adnet")
        assert not decision.allowed  # no consent to advertising
        assert sdk.report_use("u4", "advertising", BROWSING, "adnet", outcome="refrained")
        assert sdk.flush(timeout=10)
        assert (sdk.stats.uses.sent, sdk.stats.uses.violations) == (1, 0)
    (refused,) = live_server.container.uses.refused("u4")
    assert (refused.permission_id, refused.purpose, refused.count) == ("ads", "advertising", 1)
    assert live_server.container.uses.for_subject("u4") == ([], [])


def test_requires_can_report_each_refusal_as_refrained(live_server: LiveServer) -> None:
    with reporter(live_server, uses_flush_every=60.0) as sdk:

        @sdk.requires("advertising", BROWSING, "adnet", report_refusals=True)
        def show_ads(subject: str) -> str:
            return "ads"

        for _ in range(2):
            with pytest.raises(Denied):
                show_ads("u5")
        assert sdk.flush(timeout=10)
    (refused,) = live_server.container.uses.refused("u5")
    assert refused.count == 2


# -- through an injected transport -----------------------------------------------------------


class UsesServer(FakeServer):
    """The fake snapshot server, plus POST /v1/uses answering from a script of outcomes."""

    def __init__(self, script: list[int | str]) -> None:
        super().__init__()
        self.script = script  # statuses, or "down" for a connection error; then 200 forever
        self.received: list[list[dict[str, Any]]] = []
        self.hold = threading.Event()
        self.hold.set()

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/uses":
            return super().handler(request)
        self.hold.wait(10)
        outcome = self.script.pop(0) if self.script else 200
        if outcome == "down":
            raise httpx.ConnectError("connection refused", request=request)
        uses = json.loads(request.content)["uses"]
        self.received.append(uses)
        if outcome != 200:
            return httpx.Response(int(outcome), json={"status": outcome, "detail": "x"})
        return httpx.Response(200, json={"accepted": len(uses), "violations": 0})


def offline(server: UsesServer, **options: Any) -> Consentry:
    return Consentry(
        "http://consentry.example",
        api_key=KEY,
        transport=httpx.MockTransport(server.handler),
        follow=False,
        **options,
    )


def test_a_batch_is_retried_after_server_errors_and_network_failures() -> None:
    server = UsesServer([503, "down", 500, 429])
    with offline(server, uses_flush_every=60.0) as sdk:
        for i in range(4):
            sdk.report_use(f"s{i}", "recommendations", BROWSING)
        assert sdk.flush(timeout=30)
        stats = sdk.stats.uses
        assert (stats.sent, stats.retries, stats.rejected, stats.dropped) == (4, 4, 0, 0)
    # The same batch each time: 503, 500, 429 and the final 200 (the refused connection
    # carried it too, without reaching the server).
    assert [[u["subject"] for u in b] for b in server.received] == [["s0", "s1", "s2", "s3"]] * 4


def test_a_batch_the_server_refuses_is_dropped_and_counted() -> None:
    server = UsesServer([422])
    with offline(server, uses_flush_every=60.0) as sdk:
        sdk.report_use("s1", "recommendations", BROWSING)
        sdk.report_use("s2", "recommendations", BROWSING)
        assert not sdk.flush(timeout=10)  # sent, but refused: the caller must hear of it
        sdk.report_use("s3", "recommendations", BROWSING)
        assert sdk.flush(timeout=10)
        stats = sdk.stats.uses
        assert (stats.rejected, stats.sent, stats.retries) == (2, 1, 0)


def test_a_full_queue_drops_new_reports_and_counts_them() -> None:
    server = UsesServer([])
    with offline(server, uses_max_queue=3, uses_flush_every=60.0) as sdk:
        accepted = [sdk.report_use(f"s{i}", "recommendations", BROWSING) for i in range(5)]
        assert accepted == [True, True, True, False, False]
        assert sdk.stats.uses.dropped == 2
        assert sdk.flush(timeout=10)
    assert [u["subject"] for u in server.received[0]] == ["s0", "s1", "s2"]


def test_report_use_never_waits_for_the_server() -> None:
    server = UsesServer([])
    server.hold.clear()  # the server does not answer
    with offline(server, uses_batch=1, uses_flush_every=0.01) as sdk:
        for i in range(50):
            assert sdk.report_use(f"s{i}", "recommendations", BROWSING)
        assert not sdk.flush(timeout=0.2)  # a batch is stuck on the server
        assert sdk.stats.uses.queued == 50
        server.hold.set()
        assert sdk.flush(timeout=10)
        assert sdk.stats.uses.sent == 50


def test_a_flush_that_cannot_finish_gives_up_at_its_timeout() -> None:
    server = UsesServer([503] * 1000)
    sdk = offline(server)
    sdk.report_use("s1", "recommendations", BROWSING)
    assert not sdk.flush(timeout=0.3)
    assert sdk.stats.uses.retries >= 1
    sdk.close(timeout=0.2)
    assert sdk.stats.uses.dropped == 1  # close() gave up on it


def test_report_use_refuses_a_time_without_zone_and_no_categories() -> None:
    with offline(UsesServer([])) as sdk:
        with pytest.raises(ValueError, match="time zone"):
            sdk.report_use("s1", "recommendations", BROWSING, at=datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="categories"):
            sdk.report_use("s1", "recommendations", [])
        assert sdk.stats.uses.reported == 0


def test_a_refrained_report_names_its_outcome_and_a_plain_use_sends_none() -> None:
    server = UsesServer([])
    with offline(server, uses_flush_every=60.0) as sdk:
        sdk.report_use("s1", "recommendations", BROWSING)
        sdk.report_use("s2", "recommendations", BROWSING, outcome="refrained")
        with pytest.raises(ValueError, match="outcome"):
            sdk.report_use("s3", "recommendations", BROWSING, outcome="skipped")  # type: ignore[arg-type]
        assert sdk.flush(timeout=10)
    assert [u.get("outcome") for u in server.received[0]] == [None, "refrained"]
