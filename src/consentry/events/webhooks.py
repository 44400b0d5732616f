"""Signed webhooks to third parties: what is owed to whom, signing, and the delivery worker.

Each recipient in the catalogue may declare ``webhook: {url, secret_env}``. When the relay
passes an event, it plans one delivery per recipient concerned (``plan``), in the transaction
that marks the event published:

- ``permission_denied`` (a withdrawal, a do-not-sell opt-out, a GPC signal: source ``gpc``):
  the recipients of that permission;
- ``subject_erased``: every recipient with a webhook (by ledger reference: the id is gone).

A delivery is a POST of the JSON body with ``Consentry-Signature: t=<unix>,v1=<hex>``, the
HMAC-SHA256 under the recipient's secret of ``f"{t}.{body}"``. Recipients check it with
:func:`verify_signature`, which also refuses a timestamp outside the replay window, and
dedupe on ``Consentry-Event-Id`` (a delivery can arrive twice). A 2xx answer acknowledges it;
anything else is retried with exponential backoff and jitter, then the delivery is dead (the
admin API lists and retries those).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import KW_ONLY, InitVar, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from consentry import __version__
from consentry.domain.catalogue import Catalogue
from consentry.domain.messages import PERMISSION_DENIED, PermissionChanged, SubjectErased, dumps
from consentry.storage import deliveries as store
from consentry.storage.database import Database
from consentry.storage.deliveries import DeliveryRow, NewDelivery
from consentry.storage.outbox import OutboxMessage

log = logging.getLogger("consentry.webhooks")

SIGNATURE_HEADER = "Consentry-Signature"
EVENT_HEADER = "Consentry-Event-Id"
DELIVERY_HEADER = "Consentry-Delivery"
TOLERANCE = 300  # seconds: the replay window recipients should allow
MAX_BACKOFF = 3600.0
LEASE_MARGIN = timedelta(seconds=30)
OPT_OUT, ERASURE = "consentry.opt_out", "consentry.erasure"


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- signing -------------------------------------------------------------------------------


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _mac(secret: str | bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int | None = None) -> str:
    """The ``Consentry-Signature`` header value for ``body`` at ``timestamp`` (now)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, t, body)}"


def verify_signature(
    secret: str | bytes,
    header: str,
    body: bytes,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> bool:
    """For recipients: is ``header`` a valid signature of exactly ``body``, made within
    ``tolerance`` seconds of ``now``? Several ``v1`` values are accepted (secret rotation)."""
    timestamp: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            macs.append(value)
    if timestamp is None or not macs:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _mac(secret, timestamp, body)
    return any(hmac.compare_digest(expected, m) for m in macs)


# -- what is owed to whom --------------------------------------------------------------------


def plan(catalogue: Catalogue, messages: Sequence[OutboxMessage]) -> list[NewDelivery]:
    """The deliveries these relayed events call for, given the catalogue's webhooks."""
    hooked = [name for name, r in catalogue.recipients.items() if r.webhook is not None]
    if not hooked:
        return []
    out: list[NewDelivery] = []
    for message in messages:
        m = message.message
        if isinstance(m, PermissionChanged) and m.kind == PERMISSION_DENIED:
            perm = catalogue.permission(m.permission)
            if perm is None:
                continue
            base: dict[str, Any] = {
                "type": OPT_OUT,
                "event_id": message.event_id,
                "subject": m.subject,
                "subject_ref": message.key,
                "permission": perm.id,
                "purpose": perm.purpose,
                "categories": list(perm.categories),
                # A toggle, a do-not-sell request and GPC all withdraw; the ledger tells GPC
                # apart by its source. ``sale_or_sharing``: this also ends any sale or sharing
                # (CCPA opt-out) for the recipient.
                "reason": "gpc" if m.source == "gpc" else "withdrawal",
                "sale_or_sharing": perm.sale_or_sharing,
                "source": m.source,
                "occurred_at": m.occurred_at,
            }
            subject: str | None = m.subject or None
            targets = [r for r in perm.recipients if r in hooked]
        elif isinstance(m, SubjectErased):
            base = {
                "type": ERASURE,
                "event_id": message.event_id,
                "subject_ref": message.key,
                "source": m.source,
                "occurred_at": m.occurred_at,
            }
            subject = None
            targets = hooked
        else:
            continue
        out.extend(
            NewDelivery(message.event_id, subject, r, dumps({**base, "recipient": r}))
            for r in targets
        )
    return out


# -- delivering ------------------------------------------------------------------------------


def backoff_delay(
    attempts: int, base: float, rng: random.Random, cap: float = MAX_BACKOFF
) -> float:
    """Seconds to wait after ``attempts`` failed attempts: ``base * 2**(attempts-1)`` (capped),
    "equal jitter": between half and all of it, so retries of many deliveries spread out."""
    full: float = min(cap, base * 2.0 ** max(0, attempts - 1))
    return full / 2 + rng.uniform(0, full / 2)


@dataclass
class DeliveryStats:
    acknowledged: int = 0
    failed: int = 0  # attempts that will be retried
    dead: int = 0


@dataclass(eq=False)
class WebhookDispatcher:
    """Claims due deliveries and sends them from a small thread pool; records each outcome.

    ``pump`` never blocks (the relay loop calls it between batches, so a slow recipient cannot
    hold up the change stream); ``deliver_due`` sends what is due now and waits."""

    db: Database
    catalogue: Catalogue
    _: KW_ONLY
    timeout: float = 5.0
    max_attempts: int = 8
    backoff: float = 2.0
    workers: int = 24
    environ: Mapping[str, str] | None = None  # None: the process environment
    clock: Callable[[], datetime] = utcnow
    transport: InitVar[httpx.BaseTransport | None] = None

    def __post_init__(self, transport: httpx.BaseTransport | None) -> None:
        self.stats = DeliveryStats()
        self._rng = random.Random()
        self._http = httpx.Client(
            timeout=self.timeout,
            transport=transport,
            # One kept connection per worker: no connection opened and closed per attempt.
            limits=httpx.Limits(
                max_connections=self.workers, max_keepalive_connections=self.workers
            ),
            follow_redirects=False,
            headers={"User-Agent": f"consentry/{__version__}"},
        )
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="consentry-webhook")
        self._lock = threading.Lock()
        self._in_flight: set[Future[None]] = set()
        # The last pump filled every free worker: more may be due right now. The relay pumps
        # again as soon as a worker is free (``on_free``) instead of on its next 0.2 s tick,
        # which would cap delivery at workers / 0.2 s attempts per second.
        self.backlog = False
        self.on_free: Callable[[], None] | None = None

    @property
    def enabled(self) -> bool:
        return any(r.webhook is not None for r in self.catalogue.recipients.values())

    def _claim(self, limit: int) -> list[tuple[DeliveryRow, datetime]]:
        now = self.clock()
        lease = now + timedelta(seconds=self.timeout) + LEASE_MARGIN
        with self.db.write_engine.begin() as conn:
            rows = store.claim_due(conn, now, lease, limit)
        return [(row, lease) for row in rows]

    def pump(self) -> int:
        """Start sending what is due, up to the free worker slots; returns how many started."""
        with self._lock:
            self._in_flight = {f for f in self._in_flight if not f.done()}
            free = self.workers - len(self._in_flight)
        if free <= 0:
            return 0
        claimed = self._claim(free)
        self.backlog = len(claimed) == free
        with self._lock:
            for row, lease in claimed:
                self._in_flight.add(self._pool.submit(self._attempt, row, lease))
        return len(claimed)

    def deliver_due(self) -> int:
        """Send every delivery due now and wait for the outcomes; returns how many were tried."""
        tried = 0
        while True:
            claimed = self._claim(self.workers * 4)
            if not claimed:
                return tried
            wait([self._pool.submit(self._attempt, row, lease) for row, lease in claimed])
            tried += len(claimed)

    def wait_idle(self, timeout: float | None = None) -> None:
        with self._lock:
            pending = set(self._in_flight)
        wait(pending, timeout)

    def next_due(self) -> datetime | None:
        with self.db.read_engine.begin() as conn:
            return store.next_due(conn)

    def _send(self, row: DeliveryRow) -> tuple[int | None, str | None]:
        """(HTTP status, error): status None when the recipient was not reached."""
        recipient = self.catalogue.recipients.get(row.recipient)
        hook = recipient.webhook if recipient is not None else None
        if hook is None:
            return None, f"recipient {row.recipient!r} has no webhook in the catalogue"
        environ = os.environ if self.environ is None else self.environ
        secret = environ.get(hook.secret_env)
        if not secret:
            return None, f"the signing secret ${hook.secret_env} is not set"
        body = row.payload.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body, int(self.clock().timestamp())),
            EVENT_HEADER: row.event_id,
            DELIVERY_HEADER: str(row.id),
        }
        try:
            response = self._http.post(str(hook.url), content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    def _attempt(self, row: DeliveryRow, lease: datetime) -> None:
        try:
            self._attempt_once(row, lease)
        finally:
            if self.on_free is not None:
                self.on_free()

    def _attempt_once(self, row: DeliveryRow, lease: datetime) -> None:
        try:
            status, error = self._send(row)
        except Exception as exc:  # a bug must not kill the worker thread; retry later
            log.exception("webhook delivery %s failed unexpectedly", row.id)
            status, error = None, f"{type(exc).__name__}: {exc}"
        now = self.clock()
        reached = status is not None
        values: dict[str, Any] = {"last_error": error}
        if reached:
            values["sent_at"] = row.sent_at or now
        if error is None:
            values.update(status=store.ACKNOWLEDGED, acknowledged_at=now, next_attempt_at=now)
        elif row.attempts + 1 >= self.max_attempts:
            values.update(status=store.DEAD, next_attempt_at=now)
        else:
            delay = backoff_delay(row.attempts + 1, self.backoff, self._rng)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
            if reached:
                values["status"] = store.SENT
        with self.db.write_engine.begin() as conn:
            stored = store.record_attempt(conn, row.id, lease, values)
        if not stored:
            return  # the lease ran out and another worker took the delivery over
        with self._lock:
            if error is None:
                self.stats.acknowledged += 1
            elif values.get("status") == store.DEAD:
                self.stats.dead += 1
            else:
                self.stats.failed += 1
        if values.get("status") == store.DEAD:
            log.warning("webhook %s to %s is dead: %s", row.id, row.recipient, error)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()
