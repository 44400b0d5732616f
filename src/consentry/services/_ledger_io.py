"""Small helpers every service that reads or writes the ledger shares: the clock, the retry of
a write that lost an optimistic-concurrency race, and opening sealed personal fields."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

from consentry import crypto
from consentry.domain.errors import ConcurrencyConflict
from consentry.domain.events import Event

T = TypeVar("T")
MAX_ATTEMPTS = 50


def utcnow() -> datetime:
    return datetime.now(UTC)


def _pause(attempt: int, exc: Exception) -> float:
    """How long to wait before attempt ``attempt + 1`` of a write that lost a race (``exc``);
    re-raises what is not such a race, or when the attempts are spent."""
    if isinstance(exc, OperationalError) and "locked" not in str(exc).lower():
        raise exc
    if attempt == MAX_ATTEMPTS - 1:
        raise ConcurrencyConflict("too much contention on this subject") from exc
    return random.uniform(0, 0.002 * (attempt + 1))


def retrying(work: Callable[[], T]) -> T:
    """Run a write; when another writer got to the same subject first, read again and redo."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return work()
        except (ConcurrencyConflict, IntegrityError, OperationalError) as exc:
            time.sleep(_pause(attempt, exc))
    raise AssertionError("unreachable")


async def retrying_on_loop(work: Callable[[], Awaitable[T]]) -> T:
    """``retrying`` for a write on the event loop (its races come out as ConcurrencyConflict)."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return await work()
        except ConcurrencyConflict as exc:
            await asyncio.sleep(_pause(attempt, exc))
    raise AssertionError("unreachable")


def opened(event: Event, key: bytes | None) -> Event:
    """The event with its personal fields readable (empty when the key was shredded).
    Its ``hash`` still covers the sealed form, as stored."""
    aad = event.event_id.encode()
    channel = event.channel
    if channel is not None and channel.startswith(crypto.PREFIX):
        channel = crypto.open_text(key, channel, aad) if key else None
    return replace(event, options=crypto.open_options(key, event.options, aad), channel=channel)
