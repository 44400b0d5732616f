"""NATS JetStream for tests: the server at CONSENTRY_TEST_NATS_URL (default 127.0.0.1:4222),
a stream and subject prefix unique to each test, and reading a stream back.

Import the fixtures into a test module (``from nats_support import nats_names, nats_url``).
Tests skip, saying why, when the server is not reachable, unless CONSENTRY_REQUIRE_NATS=1
(CI), where they fail."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import nats
import pytest

from nats_follow import BlockingNatsFollower, StreamChange

NATS_URL = os.environ.get("CONSENTRY_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _reachable(url: str) -> str | None:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 2).close()
    except OSError as exc:
        return f"NATS not reachable at {url}: {exc}"
    return None


@pytest.fixture(scope="session")
def nats_url() -> str:
    problem = _reachable(NATS_URL)
    if problem is not None:
        if os.environ.get("CONSENTRY_REQUIRE_NATS") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    return NATS_URL


@dataclass(frozen=True)
class NatsNames:
    url: str
    stream: str
    prefix: str

    def env(self) -> dict[str, str]:
        return {
            "CONSENTRY_NATS_URL": self.url,
            "CONSENTRY_NATS_STREAM": self.stream,
            "CONSENTRY_NATS_SUBJECT_PREFIX": self.prefix,
        }


async def _delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url, allow_reconnect=False)
    try:
        await nc.jetstream().delete_stream(stream)
    except Exception:  # never created: nothing to clean
        pass
    finally:
        await nc.close()


@pytest.fixture
def nats_names(nats_url: str) -> Iterator[NatsNames]:
    """A stream and subject prefix of this test's own, deleted afterwards."""
    run = uuid.uuid4().hex[:10]
    names = NatsNames(nats_url, f"TEST_{run.upper()}", f"test.{run}.changes")
    yield names
    asyncio.run(_delete_stream(nats_url, names.stream))


def read_stream(names: NatsNames, expected: int, timeout: float = 10.0) -> list[StreamChange]:
    """Every change in the stream, in order: waits for ``expected`` of them (or ``timeout``),
    then a short while for any extra one."""
    got: list[StreamChange] = []
    with BlockingNatsFollower(
        names.url, stream=names.stream, subject_prefix=names.prefix, start="all", dedupe_window=0
    ) as follower:
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            change = follower.get(timeout=0.2)
            if change is not None:
                got.append(change)
        while (extra := follower.get(timeout=0.3)) is not None:
            got.append(extra)
    return got
