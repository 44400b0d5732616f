"""The SDK's one connection to NATS JetStream (for ``_nats.NatsFollower``): an ordered push
consumer on an event loop in a thread, handing messages over as they arrive.

nats-py is imported when the connection opens, not with this module.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from consentry.replica.jetstream import (
    DEFAULT_PREFIX,
    DEFAULT_STREAM,
    MSG_ID,
    LoopThread,
    ensure_stream,
    position_of,
)
from consentry.sdk._errors import TransportError

log = logging.getLogger("consentry.sdk")


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """Where the relay publishes (``consentry relay`` with ``CONSENTRY_NATS_*``)."""

    url: str = "nats://127.0.0.1:4222"
    stream: str = DEFAULT_STREAM
    subject_prefix: str = DEFAULT_PREFIX
    dedupe_window: int = 100_000
    connect_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class StreamMessage:
    stream_seq: int
    event_id: str | None
    position: int | None
    payload: dict[str, Any] | None  # None: not a JSON object


def _import_nats() -> Any:
    try:
        import nats
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError('follow="nats" needs nats-py: pip install "consentry[nats]"') from exc
    return nats


class StreamConnection:
    """One NATS connection and one ordered push consumer, on an event loop in a thread.
    Messages go to ``inbox`` (a thread-safe queue), a list at a time: those that arrive
    together are handed over together, which wakes the follower's thread once rather than once
    a message; ``lost`` is set when the connection ends."""

    def __init__(self, options: NatsOptions, inbox: queue.Queue[list[StreamMessage]]) -> None:
        self.options = options
        self.inbox = inbox
        self.lost = threading.Event()
        self._nc: Any = None
        self._js: Any = None
        self._loop = LoopThread("consentry-sdk-nats")

    def _call(self, work: Any, timeout: float) -> Any:
        return self._loop.call(work, timeout)

    def open(self) -> None:
        try:
            self._call(self._open(), self.options.connect_timeout * 2)
        except Exception as exc:
            raise TransportError(f"cannot use NATS at {self.options.url}: {exc!r}") from exc

    async def _open(self) -> None:
        nats = _import_nats()

        async def closed() -> None:
            self.lost.set()

        async def report(exc: Exception) -> None:
            log.debug("NATS %s: %r", self.options.url, exc)

        self.lost.clear()
        self._nc = await nats.connect(
            self.options.url,
            name="consentry-sdk",
            connect_timeout=self.options.connect_timeout,
            allow_reconnect=False,  # this follower reconnects itself and knows where to resume
            max_reconnect_attempts=1,
            error_cb=report,
            closed_cb=closed,
        )
        self._js = self._nc.jetstream(timeout=self.options.connect_timeout)
        # The relay creates the stream; a replica that starts first creates the same one.
        await ensure_stream(self._js, self.options.stream, self.options.subject_prefix)

    def bounds(self) -> tuple[int, int]:
        """(first, last) sequence the stream holds now; raises when NATS does not answer."""
        result: tuple[int, int] = self._call(self._bounds(), self.options.connect_timeout * 2)
        return result

    async def _bounds(self) -> tuple[int, int]:
        if self._js is None or self._nc is None or self._nc.is_closed:
            raise TransportError("not connected to NATS")
        info = await self._js.stream_info(self.options.stream)
        return int(info.state.first_seq), int(info.state.last_seq)

    def subscribe(self, start_seq: int) -> None:
        self._call(self._subscribe(start_seq), self.options.connect_timeout * 2)

    async def _subscribe(self, start_seq: int) -> None:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        inbox = self.inbox
        arrived: list[StreamMessage] = []
        loop = asyncio.get_running_loop()

        def hand_over() -> None:
            inbox.put(arrived.copy())
            arrived.clear()

        async def on_message(msg: Any) -> None:
            seq = int(msg.metadata.sequence.stream)
            headers = msg.headers or {}
            payload: dict[str, Any] | None
            try:
                decoded = json.loads(msg.data)
                payload = decoded if isinstance(decoded, dict) else None
            except ValueError:
                payload = None
            event_id = headers.get(MSG_ID)
            if payload is not None and isinstance(payload.get("event_id"), str):
                event_id = payload["event_id"]
            if not arrived:  # after the messages already read have gone through here
                loop.call_soon(hand_over)
            arrived.append(
                StreamMessage(
                    seq,
                    event_id,
                    position_of(headers),
                    payload,
                )
            )

        await self._js.subscribe(
            f"{self.options.subject_prefix}.>",
            stream=self.options.stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start_seq)
            ),
            ordered_consumer=True,
            idle_heartbeat=2.0,
            cb=on_message,
        )

    def drop(self) -> None:
        """Close the connection (the follower reopens it)."""
        try:
            self._call(self._drop(), self.options.connect_timeout * 2)
        except Exception:  # already gone
            log.debug("closing the NATS connection failed", exc_info=True)
        self.lost.set()

    async def _drop(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            await nc.close()

    def stop(self) -> None:
        self.drop()
        self._loop.stop()
