"""``Consentry``: decisions from an in-process replica that follows the server."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, ParamSpec, TypeVar, cast

import httpx

from consentry import __version__
from consentry.domain.rules import Decision
from consentry.replica.core import Replica
from consentry.replica.rows import AllowsFunc
from consentry.sdk._errors import Denied

if TYPE_CHECKING:
    from consentry.sdk._nats import NatsFollower
from consentry.sdk._follower import Follower, FollowStats, load_snapshot
from consentry.sdk._uses import (
    DEFAULT_BATCH,
    DEFAULT_FLUSH_EVERY,
    DEFAULT_MAX_QUEUE,
    Outcome,
    UseReporter,
    UseStats,
)

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_STALE_AFTER = 5.0
DEFAULT_RESYNC_EVERY = 900.0


class Check(NamedTuple):
    """One question for :meth:`Consentry.check_many`."""

    subject: str
    purpose: str
    categories: Sequence[str] | str
    recipient: str | None = None


@dataclass(frozen=True)
class Stats:
    """Counters since the client started (:attr:`Consentry.stats`)."""

    follow: FollowStats  # the replica's follower: changes applied, skipped, duplicates, ...
    uses: UseStats  # report_use: reported, sent, dropped, rejected, retries, queued


class Consentry:
    """A decision point in your process: a replica of the server's state, kept current.

    ::

        with Consentry("http://127.0.0.1:8000", api_key=KEY) as c:
            if c.allows("user-42", "advertising.personalised", ["behaviour.browsing"]):
                ...

    The constructor loads a snapshot (raising if it cannot: a bad key, a server away), then a
    background thread follows the change feed. Checks never touch the network. When the
    replica has had no contact with the server for ``stale_after`` seconds, checks that depend
    on a subject's choices (consent, legitimate interest) answer ``allowed=False`` with reason
    ``stale_replica`` until contact is back; the thread reconnects by itself.

    ``follow`` picks what the replica follows: ``"http"`` (or True, the default) long-polls
    ``GET /v1/changes``; ``"nats"`` reads the relay's NATS JetStream stream (``nats_url``,
    ``nats_stream``, ``nats_subject_prefix``; needs ``pip install consentry[nats]``); False
    starts no thread (call :meth:`sync`).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        stale_after: float = DEFAULT_STALE_AFTER,
        poll_wait: float | None = None,
        resync_every: float | None = DEFAULT_RESYNC_EVERY,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        follow: bool | Literal["http", "nats"] = True,
        nats_url: str = "nats://127.0.0.1:4222",
        nats_stream: str = "CONSENTRY_CHANGES",
        nats_subject_prefix: str = "consentry.changes",
        uses_batch: int = DEFAULT_BATCH,
        uses_flush_every: float = DEFAULT_FLUSH_EVERY,
        uses_max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        if stale_after <= 0:
            raise ValueError("stale_after must be positive")
        if follow not in (True, False, "http", "nats"):
            raise ValueError(f'follow must be "http", "nats", True or False, not {follow!r}')
        self.stale_after = stale_after
        self.follow_mode: Literal["http", "nats"] = "nats" if follow == "nats" else "http"
        self._http = httpx.Client(
            base_url=base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"consentry-sdk/{__version__}",
            },
            timeout=timeout,
            transport=transport,
        )
        # Contact at least twice per staleness bound while the feed is quiet.
        every = poll_wait if poll_wait is not None else min(stale_after / 2.5, 25.0)
        self._follower: Follower | NatsFollower
        try:
            if self.follow_mode == "nats":
                from consentry.sdk._nats import NatsFollower
                from consentry.sdk._nats_connection import NatsOptions

                self._follower = NatsFollower(
                    self._http,
                    NatsOptions(nats_url, nats_stream, nats_subject_prefix),
                    stale_after=stale_after,
                    probe_every=every,
                    resync_every=resync_every,
                    on_replica=self._swap,
                )
            else:
                replica, cursor = load_snapshot(self._http, stale_after)
                self._follower = Follower(
                    self._http,
                    replica,
                    cursor,
                    stale_after=stale_after,
                    poll_wait=every,
                    resync_every=resync_every,
                    on_replica=self._swap,
                )
            self._uses = UseReporter(
                self._http,
                batch_size=uses_batch,
                flush_every=uses_flush_every,
                max_queue=uses_max_queue,
            )
        except BaseException:
            self._http.close()
            raise
        self._swap(self._follower.replica)
        self._closed = False
        if follow:
            self._follower.start()

    def _swap(self, replica: Replica) -> None:
        self._replica = replica
        self.allows = replica.allows

    # -- checks ------------------------------------------------------------------------------
    def check(
        self,
        subject: str,
        purpose: str,
        categories: Sequence[str] | str,
        recipient: str | None = None,
    ) -> Decision:
        """May ``subject``'s data in ``categories`` be used for ``purpose`` (and shared with
        ``recipient``) now? Device data categories are refused: device grants live on the
        server; ask POST /v1/decisions with a ``device`` for those."""
        return self._replica.check(subject, purpose, categories, recipient)

    # allows(subject, purpose, categories, recipient=None) -> bool: ``check(...).allowed``.
    # It is the replica's own ``allows`` (compiled when the C extension is built), bound to
    # this client and rebound whenever the replica is replaced: the hot path has no extra call.
    allows: AllowsFunc

    def check_many(
        self, checks: Iterable[Check | tuple[Any, ...] | Mapping[str, Any]]
    ) -> list[Decision]:
        """Several checks against one view of the replica (tuples, ``Check`` or dicts with
        the keyword names)."""
        replica = self._replica
        out = []
        for item in checks:
            if isinstance(item, Mapping):
                out.append(
                    replica.check(
                        item["subject"], item["purpose"], item["categories"], item.get("recipient")
                    )
                )
            else:
                out.append(replica.check(*item))
        return out

    def requires(
        self,
        purpose: str,
        categories: Sequence[str] | str,
        recipient: str | None = None,
        *,
        subject: str = "subject",
        report_refusals: bool = False,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a function (sync or async) so it runs only when the check allows; else it
        raises :class:`Denied`. The subject id is the argument named ``subject``. With
        ``report_refusals``, each refusal is also reported as a use refrained from
        (``report_use(..., outcome="refrained")``), so the customer sees it counted."""

        def decorate(func: Callable[P, R]) -> Callable[P, R]:
            signature = inspect.signature(func)
            if subject not in signature.parameters:
                raise TypeError(f"{func.__qualname__} has no argument named {subject!r}")

            def guard(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                bound = signature.bind_partial(*args, **kwargs)
                bound.apply_defaults()
                who = str(bound.arguments[subject])
                decision = self.check(who, purpose, categories, recipient)
                if not decision.allowed:
                    if report_refusals:
                        self.report_use(who, purpose, categories, recipient, outcome="refrained")
                    raise Denied(decision)

            if inspect.iscoroutinefunction(func):
                coroutine = cast(Callable[P, Awaitable[Any]], func)

                @functools.wraps(func)
                async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                    guard(args, kwargs)
                    return await coroutine(*args, **kwargs)

                return cast(Callable[P, R], async_wrapper)

            @functools.wraps(func)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                guard(args, kwargs)
                return func(*args, **kwargs)

            return wrapper

        return decorate

    # -- state -------------------------------------------------------------------------------
    @property
    def cursor(self) -> str:
        """Where in the server's change feed the replica is (``follow="nats"``: the cursor of
        the snapshot it loaded; the stream's own sequences are the follower's)."""
        return self._follower.cursor

    @property
    def stale(self) -> bool:
        """True while checks fail closed for lack of contact with the server."""
        return self._replica.stale()

    @property
    def subjects(self) -> int:
        """How many subjects the replica holds."""
        return len(self._replica)

    @property
    def stats(self) -> Stats:
        """Counters: the follower's (``applied`` counts each change once) and report_use's."""
        follow = FollowStats(**vars(self._follower.stats))
        return Stats(follow=follow, uses=self._uses.snapshot())

    def sync(self) -> int:
        """Poll the change feed (or handle what JetStream delivered) once now; the background
        thread does it by itself."""
        return self._follower.poll()

    # -- access reports ----------------------------------------------------------------------
    def report_use(
        self,
        subject: str,
        purpose: str,
        categories: Sequence[str] | str,
        recipient: str | None = None,
        at: datetime | None = None,
        *,
        outcome: Outcome = "used",
    ) -> bool:
        """Report that ``subject``'s data in ``categories`` was used for ``purpose`` (and shared
        with ``recipient``) at ``at`` (default: now; time-zone aware) — or, with
        ``outcome="refrained"``, that the check said no and the data was not used: the
        customer's page counts those apart ("we did not use ..."), and they are never
        violations. Never blocks: the report is queued and sent in a batch by a background
        thread (``POST /v1/uses``; the key needs the ``uses:write`` scope). False when the queue
        was full and the report was dropped (counted in ``stats.uses.dropped``)."""
        return self._uses.report(subject, purpose, categories, recipient, at, outcome)

    def flush(self, timeout: float | None = None) -> bool:
        """Send the queued use reports now; True once all are sent and accepted, False when
        ``timeout`` passed first or the server refused some sent since the previous flush
        (``stats.uses.rejected`` counts them)."""
        return self._uses.flush(timeout)

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self, timeout: float = 5.0) -> None:
        """Send the queued use reports (waiting up to ``timeout`` seconds; what is still queued
        then counts as dropped), stop the follower, close the connections."""
        if self._closed:
            return
        self._closed = True
        self._uses.close(timeout)
        if self._follower.is_alive() or self.follow_mode == "nats":
            self._follower.stop()
        self._http.close()

    def __enter__(self) -> Consentry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
