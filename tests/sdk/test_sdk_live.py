"""The SDK and the change feed against a real server (uvicorn on loopback), on SQLite and
PostgreSQL."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from consentry.api.routes import changes
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.replica import wire
from consentry.sdk import AuthenticationError, Consentry, Decision, Reason
from sdk.live import LiveServer, ServerThread, eventually
from support import bearer


def writer(live: LiveServer) -> httpx.Client:
    key = live.container.keys.create(["subjects:write", "subjects:read"])
    return httpx.Client(base_url=live.url, headers=bearer(key))


def test_sdk_starts_from_the_snapshot_and_follows_api_writes(live_server: LiveServer) -> None:
    live_server.container.consents.change("s1", [Change("recs", ChoiceState.GRANTED)], Context())
    with Consentry(live_server.url, api_key=live_server.key) as sdk, writer(live_server) as api:
        assert sdk.subjects == 1
        assert sdk.check("s1", "recommendations", ["behaviour.browsing"]) == Decision(
            True, Reason.CONSENT, "recs"
        )
        put = api.put("/v1/subjects/s1/permissions/recs", json={"state": "denied"})
        assert put.status_code == 200, put.text
        api.put("/v1/subjects/s2/permissions/ads", json={"state": "granted", "notice_version": "3"})
        assert eventually(lambda: sdk.allows("s2", "advertising", "behaviour.browsing", "adnet"))
        assert sdk.check("s1", "recommendations", "behaviour.browsing").reason is Reason.DENIED


def test_sdk_forgets_an_erased_subject(live_server: LiveServer) -> None:
    # Erasure deletes the subject's outbox rows; on SQLite the erasure row can then take the
    # very position the SDK stopped at. The cursor's event id catches that (410, reload).
    live_server.container.consents.change("s1", [Change("recs", ChoiceState.GRANTED)], Context())
    with Consentry(live_server.url, api_key=live_server.key) as sdk, writer(live_server) as api:
        assert sdk.allows("s1", "recommendations", "behaviour.browsing")
        assert api.delete("/v1/subjects/s1").status_code == 200
        assert eventually(lambda: not sdk.allows("s1", "recommendations", "behaviour.browsing"))


def test_sdk_with_a_bad_key_raises_authentication_error(live_server: LiveServer) -> None:
    with pytest.raises(AuthenticationError):
        Consentry(live_server.url, api_key="csk_nope_nope")


def test_sdk_fails_closed_while_the_server_is_away_and_reconnects(
    live_server: LiveServer,
) -> None:
    container = live_server.container
    container.consents.change("s1", [Change("recs", ChoiceState.GRANTED)], Context())
    sdk = Consentry(live_server.url, api_key=live_server.key, stale_after=0.5)
    try:
        live_server.thread.stop()
        assert eventually(lambda: sdk.stale)
        assert sdk.check("s1", "recommendations", "behaviour.browsing").reason is (
            Reason.STALE_REPLICA
        )
        container.consents.change("s1", [Change("recs", ChoiceState.DENIED)], Context())
        again = ServerThread(container, live_server.thread.port)
        try:
            assert eventually(lambda: not sdk.stale)
            assert eventually(
                lambda: (
                    sdk.check("s1", "recommendations", "behaviour.browsing").reason is Reason.DENIED
                )
            )
        finally:
            again.stop()
    finally:
        sdk.close()


def feed(live: LiveServer, **params: str) -> httpx.Response:
    return httpx.get(f"{live.url}/v1/changes", params=params, headers=bearer(live.key))


def test_changes_are_json_lines_with_the_next_cursor(live_server: LiveServer) -> None:
    consents = live_server.container.consents
    consents.change("s1", [Change("recs", ChoiceState.GRANTED)], Context())
    consents.change("s1", [Change("ads", ChoiceState.GRANTED)], Context())
    first = feed(live_server, after="0", limit="1")
    assert first.headers["content-type"].startswith(wire.NDJSON)
    (line,) = [json.loads(x) for x in first.text.splitlines()]
    assert line["change"]["subject"] == "s1" and line["change"]["permission"] == "recs"
    cursor = first.headers[wire.CURSOR_HEADER]
    assert cursor == line["cursor"]
    rest = [json.loads(x) for x in feed(live_server, after=cursor).text.splitlines()]
    assert [r["change"]["seq"] for r in rest] == [2]


def test_a_long_poll_with_nothing_new_ends_empty_at_the_same_cursor(
    live_server: LiveServer,
) -> None:
    live_server.container.consents.change("s1", [Change("recs", ChoiceState.GRANTED)], Context())
    head = feed(live_server).headers[wire.CURSOR_HEADER]
    response = feed(live_server, after=head, wait="0.2")
    assert response.status_code == 200 and response.text == ""
    assert response.headers[wire.CURSOR_HEADER] == head


def test_a_cursor_ahead_of_the_feed_is_410(live_server: LiveServer) -> None:
    response = feed(live_server, after="999")
    assert response.status_code == 410 and response.json()["code"] == "cursor_expired"


def test_a_cursor_whose_change_was_replaced_is_410(live_server: LiveServer) -> None:
    live_server.container.consents.change("s1", [Change("recs", ChoiceState.GRANTED)], Context())
    head = feed(live_server).headers[wire.CURSOR_HEADER]
    assert head.startswith("1.")
    assert feed(live_server, after=head).status_code == 200
    response = feed(live_server, after="1.00000000-0000-0000-0000-000000000000")
    assert response.status_code == 410 and "replaced" in response.json()["detail"]


def test_a_follower_too_far_behind_is_told_to_reload(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    consents = live_server.container.consents
    for pid in ("recs", "ads", "email"):
        consents.change("s1", [Change(pid, ChoiceState.GRANTED)], Context())
    monkeypatch.setattr(changes, "MAX_LAG", 1)
    response = feed(live_server, after="0")
    assert response.status_code == 410 and "snapshot" in response.json()["detail"]


def test_feed_and_snapshot_need_the_decide_scope(live_server: LiveServer) -> None:
    reader = live_server.container.keys.create(["subjects:read"])
    for path in ("/v1/changes", "/v1/snapshot"):
        assert httpx.get(live_server.url + path).status_code == 401
        assert httpx.get(live_server.url + path, headers=bearer(reader)).status_code == 403


def test_snapshot_is_gzipped_json_lines_with_header_and_trailer(live_server: LiveServer) -> None:
    consents = live_server.container.consents
    consents.change("s1", [Change("recs", ChoiceState.GRANTED)], Context())
    consents.change("s2", [Change("ads", ChoiceState.DENIED)], Context())
    raw = httpx.get(
        f"{live_server.url}/v1/snapshot",
        headers={**bearer(live_server.key), "Accept-Encoding": "gzip"},
    )
    assert raw.headers["content-encoding"] == "gzip"
    lines = [json.loads(x) for x in raw.text.splitlines()]  # httpx un-gzips
    assert len(gzip.compress(raw.content)) > 0
    header, subjects, trailer = lines[0], lines[1:-1], lines[-1]
    assert header["format"] == wire.SNAPSHOT_FORMAT and header["cursor"].startswith("2.")
    assert header["catalogue"]["catalogue_version"] and header["subjects"] == 2
    assert [s[0] for s in subjects] == ["s1", "s2"] and trailer == {"end": True, "subjects": 2}
    assert subjects[0][3] == 1  # s1: recs (bit 0) granted


def test_http_follower_counts_each_applied_change_once(live_server: LiveServer) -> None:
    container = live_server.container
    container.consents.change("c1", [Change("recs", ChoiceState.GRANTED)], Context())
    with Consentry(live_server.url, api_key=live_server.key, follow=False) as sdk:
        for state in (ChoiceState.DENIED, ChoiceState.GRANTED, ChoiceState.DENIED):
            container.consents.change("c1", [Change("recs", state)], Context())
        container.consents.change("c2", [Change("ads", ChoiceState.GRANTED)], Context())
        assert sdk.sync() == 4
        assert sdk.sync() == 0
        stats = sdk.stats.follow
        assert (stats.applied, stats.skipped, stats.gaps, stats.reloads) == (4, 0, 0, 0)
        assert sdk.check("c1", "recommendations", "behaviour.browsing").reason is Reason.DENIED
