"""The SDK following NATS JetStream (``follow="nats"``): a real server for the snapshot, a real
relay publishing to the real NATS, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import nats
import pytest

from consentry.domain.planning import Change, Context
from consentry.domain.rules import Code
from consentry.domain.state import ChoiceState
from consentry.events.publisher import NatsPublisher
from consentry.events.relay import Relay
from consentry.feed.server import ObservedDatabase
from consentry.sdk import Consentry, Reason, TransportError
from nats_support import NatsNames, nats_names, nats_url  # noqa: F401 (fixtures)
from sdk.live import LiveServer, eventually
from sdk.tcp_proxy import TcpProxy
from support import bearer

RECS = ("recommendations", ["behaviour.browsing"])


@dataclass
class Relayed:
    live: LiveServer
    names: NatsNames
    relay: Relay


@pytest.fixture
def relayed(live_server: LiveServer, nats_names: NatsNames) -> Iterator[Relayed]:  # noqa: F811
    """The live server plus a relay publishing its outbox to this test's stream, woken by
    each commit (as inside `consentry serve`)."""
    publisher = NatsPublisher(
        nats_names.url, stream=nats_names.stream, subject_prefix=nats_names.prefix, shards=4
    )
    relay = Relay(live_server.container.db, publisher)
    db = live_server.container.db
    assert isinstance(db, ObservedDatabase)
    db.committed.append(relay.notify)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        yield Relayed(live_server, nats_names, relay)
    finally:
        db.committed.remove(relay.notify)
        relay.stop()
        thread.join(timeout=10)
        relay.close()


class CountingTransport(httpx.HTTPTransport):
    """The real transport, recording which paths the SDK asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def follow_nats(r: Relayed, url: str | None = None, **options: object) -> Consentry:
    return Consentry(
        r.live.url,
        api_key=r.live.key,
        follow="nats",
        nats_url=url or r.names.url,
        nats_stream=r.names.stream,
        nats_subject_prefix=r.names.prefix,
        **options,  # type: ignore[arg-type]
    )


def write(r: Relayed, subject: str, perm: str, state: ChoiceState) -> None:
    outcome = r.live.container.consents.change(subject, [Change(perm, state)], Context())
    assert outcome.changed


def proxy_for(r: Relayed) -> TcpProxy:
    parts = urlsplit(r.names.url)
    return TcpProxy((parts.hostname or "127.0.0.1", parts.port or 4222))


def test_nats_replica_follows_api_writes_through_jetstream_not_the_feed(
    relayed: Relayed,
) -> None:
    write(relayed, "s1", "recs", ChoiceState.GRANTED)
    transport = CountingTransport()
    api_key = relayed.live.container.keys.create(["subjects:write"])
    with (
        follow_nats(relayed, transport=transport) as sdk,
        httpx.Client(base_url=relayed.live.url, headers=bearer(api_key)) as api,
    ):
        assert sdk.allows("s1", *RECS)
        put = api.put("/v1/subjects/s1/permissions/recs", json={"state": "denied"})
        assert put.status_code == 200, put.text
        api.put("/v1/subjects/s2/permissions/ads", json={"state": "granted", "notice_version": "3"})
        assert eventually(lambda: sdk.allows("s2", "advertising", "behaviour.browsing", "adnet"))
        assert sdk.check("s1", *RECS).reason is Reason.DENIED
        assert sdk.stats.follow.applied == 2
        assert sdk.stats.follow.reloads == 0
    assert "/v1/snapshot" in transport.paths
    assert "/v1/changes" not in transport.paths


def test_nats_replica_applies_each_subjects_changes_in_order_and_exactly_once(
    relayed: Relayed,
) -> None:
    with follow_nats(relayed) as sdk:
        written = 0
        for round_ in range(6):
            state = ChoiceState.GRANTED if round_ % 2 == 0 else ChoiceState.DENIED
            for i in range(15):
                write(relayed, f"o-{i}", ("recs", "ads", "email")[(i + round_) % 3], state)
                written += 1
        assert eventually(lambda: sdk.stats.follow.applied == written)
        stats = sdk.stats.follow
        # An event applied out of its subject's order would be a gap (and a reload).
        assert (stats.gaps, stats.reloads, stats.duplicates) == (0, 0, 0)
        perms = ("recs", "ads", "email")
        for i in range(15):
            seq, _, codes = sdk._replica.state_of(f"o-{i}")
            assert seq == 6
            # The last three rounds: deny, grant, deny (each on another permission).
            assert codes == {
                perms[i % 3]: Code.DENIED,
                perms[(i + 1) % 3]: Code.GRANTED,
                perms[(i + 2) % 3]: Code.DENIED,
            }


def test_nats_replica_drops_redelivered_messages_by_event_id(relayed: Relayed) -> None:
    with follow_nats(relayed) as sdk:
        write(relayed, "d1", "recs", ChoiceState.GRANTED)
        write(relayed, "d1", "recs", ChoiceState.DENIED)
        assert eventually(lambda: sdk.stats.follow.applied == 2)
        # A relay that crashed after publishing, beyond JetStream's duplicate window, publishes
        # the same rows again (new message ids, same event ids in the payloads).
        names = relayed.names

        async def republish() -> int:
            nc = await nats.connect(names.url)
            js = nc.jetstream()
            first = await js.subscribe(
                f"{names.prefix}.>", stream=names.stream, ordered_consumer=True
            )
            copies = 0
            for _ in range(2):
                msg = await first.next_msg(timeout=5)
                await js.publish(msg.subject, msg.data)  # no Nats-Msg-Id: stored again
                copies += 1
            await nc.close()
            return copies

        assert asyncio.run(republish()) == 2
        assert eventually(lambda: sdk.stats.follow.duplicates == 2)
        assert sdk.stats.follow.applied == 2
        assert sdk.check("d1", *RECS).reason is Reason.DENIED
        write(relayed, "d1", "recs", ChoiceState.GRANTED)  # and it goes on following
        assert eventually(lambda: sdk.allows("d1", *RECS))
        assert sdk.stats.follow.applied == 3


def test_nats_replica_reconnects_after_its_connection_is_dropped(relayed: Relayed) -> None:
    with proxy_for(relayed) as proxy, follow_nats(relayed, proxy.url) as sdk:
        write(relayed, "r1", "recs", ChoiceState.GRANTED)
        assert eventually(lambda: sdk.allows("r1", *RECS))
        proxy.drop()
        write(relayed, "r1", "recs", ChoiceState.DENIED)
        assert eventually(lambda: sdk.check("r1", *RECS).reason is Reason.DENIED)
        assert sdk.stats.follow.reconnects >= 1
        assert proxy.connections >= 2
        assert (sdk.stats.follow.applied, sdk.stats.follow.reloads) == (2, 0)


def test_nats_replica_fails_closed_without_nats_and_recovers(relayed: Relayed) -> None:
    write(relayed, "f1", "recs", ChoiceState.GRANTED)
    with proxy_for(relayed) as proxy, follow_nats(relayed, proxy.url, stale_after=0.5) as sdk:
        assert sdk.allows("f1", *RECS)
        proxy.pause()
        assert eventually(lambda: sdk.stale)
        assert sdk.check("f1", *RECS).reason is Reason.STALE_REPLICA
        write(relayed, "f1", "recs", ChoiceState.DENIED)  # published while the replica is away
        proxy.resume()
        assert eventually(lambda: not sdk.stale)
        assert eventually(lambda: sdk.check("f1", *RECS).reason is Reason.DENIED)
        assert sdk.stats.follow.reloads == 0


def test_nats_replica_reloads_the_snapshot_when_the_stream_lost_its_place(
    relayed: Relayed, caplog: pytest.LogCaptureFixture
) -> None:
    write(relayed, "p1", "recs", ChoiceState.GRANTED)
    with proxy_for(relayed) as proxy, follow_nats(relayed, proxy.url) as sdk:
        proxy.pause()
        write(relayed, "p1", "recs", ChoiceState.DENIED)
        write(relayed, "p2", "recs", ChoiceState.GRANTED)
        assert eventually(lambda: relayed.relay.stats.published >= 3)

        async def purge() -> None:
            nc = await nats.connect(relayed.names.url)
            await nc.jetstream().purge_stream(relayed.names.stream)
            await nc.close()

        asyncio.run(purge())  # the changes the replica has not read are gone from the stream
        with caplog.at_level(logging.WARNING, logger="consentry.sdk"):
            proxy.resume()
            assert eventually(lambda: sdk.stats.follow.reloads == 1)
        assert "no longer" in caplog.text or "starts at" in caplog.text
        assert sdk.check("p1", *RECS).reason is Reason.DENIED
        assert sdk.allows("p2", *RECS)
        write(relayed, "p2", "recs", ChoiceState.DENIED)  # and it follows from the new place
        assert eventually(lambda: sdk.check("p2", *RECS).reason is Reason.DENIED)


def test_nats_replica_without_nats_raises_at_construction(relayed: Relayed) -> None:
    with TcpProxy(("127.0.0.1", 9)) as closed:
        url = closed.url
        closed.pause()
        with pytest.raises(TransportError):
            follow_nats(relayed, url)
