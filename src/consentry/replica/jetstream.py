"""What the relay's NATS publisher and the followers of its stream agree on.

The layout: one JetStream stream (``CONSENTRY_CHANGES`` by default; stream names cannot contain
dots) holding subjects ``<prefix>.>``; each outbox row goes to ``<prefix>.<shard>``. The framing:
a message's body is the outbox payload (JSON), its ``Nats-Msg-Id`` header the event id (within
the stream's duplicate window the server drops a re-publication) and its
``Consentry-Position`` header the outbox position. After the window consumers still dedupe by
event id (``RecentIds``).

Client side: the SDK's follower imports this module, so nats-py is imported only inside the
functions that talk to NATS.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import OrderedDict
from collections.abc import Coroutine, Mapping
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_STREAM = "CONSENTRY_CHANGES"
DEFAULT_PREFIX = "consentry.changes"
MSG_ID = "Nats-Msg-Id"
POSITION_HEADER = "Consentry-Position"
DUPLICATE_WINDOW = timedelta(minutes=2)
MAX_AGE = timedelta(days=7)


def subject_for(prefix: str, shard: int) -> str:
    return f"{prefix}.{shard}"


def headers_for(event_id: str, position: int) -> dict[str, str]:
    """The headers a published outbox row carries."""
    return {MSG_ID: event_id, POSITION_HEADER: str(position)}


def position_of(headers: Mapping[str, str]) -> int | None:
    """The outbox position a message carries (None: no such header, or not a number)."""
    position = headers.get(POSITION_HEADER)
    return int(position) if position and position.isdigit() else None


def stream_config(stream: str, prefix: str) -> Any:
    from nats.js.api import StorageType, StreamConfig

    return StreamConfig(
        name=stream,
        subjects=[f"{prefix}.>"],
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        max_age=MAX_AGE.total_seconds(),
    )


async def ensure_stream(js: Any, stream: str, prefix: str) -> None:
    """Create the stream when it does not exist (an existing one is left as configured)."""
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(stream)
        return
    except NotFoundError:
        pass
    try:
        await js.add_stream(stream_config(stream, prefix))
    except Exception:
        await js.stream_info(stream)  # another process created it just now; else this raises


class RecentIds:
    """The last ``size`` event ids, oldest forgotten first: a consumer drops redelivered
    changes by it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, event_id: str) -> bool:
        """True when the id is new."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


class LoopThread:
    """An asyncio event loop in a daemon thread, for synchronous code that drives nats-py."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    def call(self, work: Coroutine[Any, Any, T], timeout: float | None) -> T:
        return self.submit(work).result(timeout)

    def stop(self) -> None:
        """Cancel what still runs on the loop (nats-py's helper tasks), then end the thread."""
        if self._thread.is_alive():
            try:
                self.call(_cancel_others(), 5)
            except Exception:  # stopping anyway
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


async def _cancel_others() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
