"""The outbox relay against real NATS JetStream and real databases: every row once, in
per-subject order, with two relays at once on PostgreSQL, and after a crash mid-round."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import func, select

from consentry.bootstrap import Container, bootstrap
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.events.publisher import FeedPublisher, NatsPublisher, PublishError, shard_of
from consentry.events.relay import Relay
from consentry.storage.outbox import OutboxMessage
from nats_follow import BlockingNatsFollower, StreamChange
from nats_support import NatsNames, read_stream
from support import make_settings

PERMS = ("recs", "ads", "email")


def publisher(names: NatsNames, shards: int = 16) -> NatsPublisher:
    return NatsPublisher(names.url, stream=names.stream, subject_prefix=names.prefix, shards=shards)


def write_changes(container: Container, subjects: int, rounds: int) -> int:
    """Grant and withdraw permissions for many subjects, interleaved; returns events written."""
    written = 0
    for r in range(rounds):
        state = ChoiceState.GRANTED if r % 2 == 0 else ChoiceState.DENIED
        for i in range(subjects):
            perm = PERMS[(i + r) % len(PERMS)]
            outcome = container.consents.change(f"cust-{i}", [Change(perm, state)], Context())
            written += len(outcome.changed)
    return written


def unpublished(container: Container) -> int:
    from consentry.storage.tables import outbox

    with container.db.read() as conn:
        query = select(func.count()).where(outbox.c.published_at.is_(None))
        return int(conn.execute(query).scalar_one())


def assert_per_subject_order(changes: Sequence[StreamChange]) -> None:
    seqs: dict[str, list[int]] = defaultdict(list)
    for c in changes:
        seqs[c.payload["subject"]].append(c.payload["seq"])
    for subject, order in seqs.items():
        assert order == sorted(order), f"{subject}: {order}"


class Counting:
    """A publisher that counts what it was asked to publish (and can crash after publishing)."""

    def __init__(self, inner: NatsPublisher, crash_after: int | None = None) -> None:
        self.inner = inner
        self.target = inner.target
        self.published: Counter[str] = Counter()
        self.crash_after = crash_after
        self._lock = threading.Lock()

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        self.inner.publish(messages)
        with self._lock:
            self.published.update(m.event_id for m in messages)
            if self.crash_after is not None and sum(self.published.values()) >= self.crash_after:
                self.crash_after = None
                raise RuntimeError("simulated crash between publishing and marking")

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def relay_container(database_url: str) -> Iterator[Container]:
    c = bootstrap(make_settings(database_url))
    yield c
    c.close()


def test_relay_publishes_every_row_once_in_subject_order_and_marks_it(
    relay_container: Container, nats_names: NatsNames
) -> None:
    written = write_changes(relay_container, subjects=20, rounds=3)
    counting = Counting(publisher(nats_names))
    relay = Relay(relay_container.db, counting, batch_size=25)
    try:
        assert relay.drain() == written
    finally:
        relay.close()
    assert unpublished(relay_container) == 0
    assert set(counting.published.values()) == {1}
    changes = read_stream(nats_names, written)
    assert len(changes) == written
    assert len({c.event_id for c in changes}) == written
    assert_per_subject_order(changes)
    for c in changes:
        ref = c.payload["subject_ref"]
        assert c.shard == shard_of(ref, 16)


@pytest.mark.postgres
def test_two_relays_at_once_on_postgres_publish_each_row_exactly_once_in_subject_order(
    postgres_url: str, nats_names: NatsNames
) -> None:
    container = bootstrap(make_settings(postgres_url))
    try:
        written = write_changes(container, subjects=40, rounds=5)
        counting = Counting(publisher(nats_names))
        relays = [Relay(container.db, counting, batch_size=7) for _ in range(2)]
        threads = [threading.Thread(target=r.drain) for r in relays]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        # A relay whose rows were all held back by the other stops early: finish the rest.
        relays[0].drain()
        assert unpublished(container) == 0
        assert sum(counting.published.values()) == written
        assert set(counting.published.values()) == {1}  # no row went out twice
        changes = read_stream(nats_names, written)
        assert len(changes) == written
        assert_per_subject_order(changes)
        counting.close()
    finally:
        container.close()


def test_a_crash_between_publishing_and_marking_publishes_again_and_followers_dedupe(
    relay_container: Container, nats_names: NatsNames
) -> None:
    written = write_changes(relay_container, subjects=10, rounds=2)
    with BlockingNatsFollower(
        nats_names.url, stream=nats_names.stream, subject_prefix=nats_names.prefix, start="all"
    ) as follower:
        crashing = Counting(publisher(nats_names), crash_after=1)
        relay = Relay(relay_container.db, crashing, batch_size=8)
        with pytest.raises(RuntimeError, match="simulated crash"):
            relay.relay_batch()
        assert unpublished(relay_container) == written  # nothing was marked
        relay.drain()
        assert unpublished(relay_container) == 0
        assert max(crashing.published.values()) == 2  # the first batch went out twice
        got: list[StreamChange] = []
        while len(got) < written and (change := follower.get(timeout=10)) is not None:
            got.append(change)
        assert len(got) == written and len({c.event_id for c in got}) == written
        assert follower.get(timeout=0.3) is None
        relay.close()
    # Within JetStream's duplicate window the server itself kept one copy of each.
    assert len(read_stream(nats_names, written)) == written


def test_a_follower_drops_a_change_it_has_already_seen(nats_names: NatsNames) -> None:
    pub = publisher(nats_names)
    raw = '{"event_id":"e-1","subject":"cust-1","seq":1,"kind":"permission_denied"}'
    ref = "a1" * 32  # a chain reference (random in the server)
    try:
        # Beyond the duplicate window JetStream stores a re-publication again; two message ids
        # for one event make the server keep both, as it would then.
        pub.publish([OutboxMessage(1, "e-1", "cust-1", ref, None, raw)])
        pub.publish([OutboxMessage(1, "e-1-later", "cust-1", ref, None, raw)])
    finally:
        pub.close()
    assert len(read_stream(nats_names, 2)) == 2
    with BlockingNatsFollower(
        nats_names.url, stream=nats_names.stream, subject_prefix=nats_names.prefix, start="all"
    ) as follower:
        first = follower.get(timeout=10)
        again = follower.get(timeout=0.5)
        assert follower.follower.duplicates == 1
    assert first is not None and first.event_id == "e-1" and first.stream_seq == 1
    assert again is None


def test_a_follower_from_new_sees_only_later_changes_and_can_follow_one_shard(
    nats_names: NatsNames,
) -> None:
    subjects = [f"cust-{i}" for i in range(50)]
    refs = {s: hashlib.sha256(s.encode()).hexdigest() for s in subjects}  # any distinct refs
    inside = [s for s in subjects if shard_of(refs[s], 4) == 0]
    outside = [s for s in subjects if shard_of(refs[s], 4) != 0]

    def message(n: int, subject: str) -> OutboxMessage:
        raw = f'{{"event_id":"e-{n}","subject":"{subject}","seq":{n}}}'
        return OutboxMessage(n, f"e-{n}", subject, refs[subject], None, raw)

    pub = publisher(nats_names, shards=4)
    names = {"stream": nats_names.stream, "subject_prefix": nats_names.prefix}
    try:
        pub.publish([message(1, inside[0]), message(2, outside[0])])
        with (
            BlockingNatsFollower(nats_names.url, **names) as new,
            BlockingNatsFollower(nats_names.url, **names, shards=[0], start="all") as shard0,
        ):
            pub.publish([message(3, inside[1]), message(4, outside[1])])
            got_new = [new.get(timeout=10), new.get(timeout=10)]
            got_shard = [shard0.get(timeout=10), shard0.get(timeout=10)]
            assert new.get(timeout=0.3) is None and shard0.get(timeout=0.3) is None
    finally:
        pub.close()
    assert [c.event_id for c in got_new if c is not None] == ["e-3", "e-4"]
    assert [(c.event_id, c.shard) for c in got_shard if c is not None] == [("e-1", 0), ("e-3", 0)]


def test_the_feed_publisher_marks_rows_without_any_broker(relay_container: Container) -> None:
    written = write_changes(relay_container, subjects=5, rounds=2)
    relay = Relay(relay_container.db, FeedPublisher())
    assert relay.drain() == written
    assert unpublished(relay_container) == 0
    assert relay.drain() == 0


def test_an_unreachable_nats_leaves_rows_unpublished(relay_container: Container) -> None:
    written = write_changes(relay_container, subjects=3, rounds=1)
    relay = Relay(relay_container.db, NatsPublisher("nats://127.0.0.1:1", timeout=1.0))
    try:
        with pytest.raises(PublishError, match="cannot use NATS"):
            relay.relay_batch()
    finally:
        relay.close()
    assert unpublished(relay_container) == written


def test_an_erasure_goes_to_the_subjects_shard_and_its_unpublished_rows_are_redacted(
    relay_container: Container, nats_names: NatsNames
) -> None:
    consents = relay_container.consents
    consents.change("cust-1", [Change("recs", ChoiceState.GRANTED)], Context())
    relay = Relay(relay_container.db, publisher(nats_names))
    try:
        relay.drain()
        consents.change("cust-1", [Change("ads", ChoiceState.GRANTED)], Context())
        relay_container.rights.erase("cust-1", Context())
        relay.drain()
    finally:
        relay.close()
    changes = read_stream(nats_names, 3)
    kinds = [c.payload["kind"] for c in changes]
    assert kinds == ["permission_granted", "redacted", "subject_erased"]
    assert changes[0].shard == changes[1].shard == changes[2].shard
    # The unpublished grant keeps its place in the feed but no longer names the subject.
    assert "subject" not in changes[1].payload and "permission" not in changes[1].payload
    assert "subject" not in changes[2].payload  # by reference only


def test_a_row_that_commits_below_the_relays_floor_is_still_published_by_the_sweep(
    relay_container: Container,
) -> None:
    from consentry.storage.tables import outbox

    written = write_changes(relay_container, subjects=4, rounds=1)
    relay = Relay(relay_container.db, FeedPublisher())
    assert relay.drain() == written
    # As a transaction that took an early position and committed late would leave it:
    with relay_container.db.write() as conn:
        first = conn.execute(select(func.min(outbox.c.position))).scalar_one()
        conn.execute(outbox.update().where(outbox.c.position == first).values(published_at=None))
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10  # anti-hang bound; the sweep runs every second
        while unpublished(relay_container) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        relay.stop()
        thread.join(timeout=10)
    assert unpublished(relay_container) == 0
    assert relay.stats.published == written + 1


def test_a_row_that_commits_late_inside_the_relays_range_goes_out_with_the_next_round(
    relay_container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers take positions before they commit: the relay's floor waits below a position it
    has not seen yet, so the late row does not wait for the sweep (switched off here)."""
    from consentry.events import relay as relay_module
    from consentry.storage.tables import outbox

    monkeypatch.setattr(relay_module, "SWEEP_EVERY", 1e9)
    written = write_changes(relay_container, subjects=3, rounds=1)
    with relay_container.db.write() as conn:
        rows = conn.execute(select(outbox).order_by(outbox.c.position)).mappings().all()
        late = dict(rows[1])  # as if its transaction were still in flight
        conn.execute(outbox.delete().where(outbox.c.position == late["position"]))
    relay = Relay(relay_container.db, FeedPublisher())
    assert relay.relay_batch() == written - 1
    assert relay.relay_batch() == 0
    with relay_container.db.write() as conn:
        conn.execute(outbox.insert().values(**late))  # it commits now
    assert relay.relay_batch() == 1
    assert unpublished(relay_container) == 0
