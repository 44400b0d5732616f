"""The demo's partners: where the third parties of the demo catalogue hear of opt-outs.

``consentry demo`` runs this receiver beside the server, on its own port, as a partner runs its
own endpoint: the demo catalogue's third parties (every recipient but the controller) get a
webhook at ``<receiver>/webhooks/<recipient>``, signed with the demo partner secret. Each
delivery is checked with :func:`consentry.events.webhooks.verify_signature` (the check the
webhook contract asks of every recipient, replay window included): a valid one is acknowledged
with 200, anything else refused with a 4xx. The receiver keeps the last deliveries in memory,
prints a line per delivery on the demo's console and lists them at ``GET /`` (a page) and
``GET /received`` (JSON). The same port serves the partners' web tags for the demo shop
(``demo/tags.py``), at ``http://<recipient>.localhost:<port>``.

A client of the server like any real partner: it knows the catalogue and the secret, nothing
else."""

from __future__ import annotations

import html
import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from consentry.demo import tags
from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Webhook
from consentry.domain.catalogue_vocabulary import RecipientKind
from consentry.events.webhooks import (
    ERASURE,
    EVENT_HEADER,
    OPT_OUT,
    SIGNATURE_HEADER,
    verify_signature,
)

# The environment variable holding the demo's signing secret for every partner (a name, not
# a secret: bandit B105 accepted).
SECRET_ENV = "CONSENTRY_DEMO_PARTNER_SECRET"  # nosec B105
WEBHOOK_PATH = "/webhooks/"
KEEP = 200  # deliveries (and refusals) kept in memory
REMEMBERED = 10_000  # event ids remembered to answer a repeated delivery without listing it twice
MAX_BODY = 64 * 1024


def partners(catalogue: Catalogue) -> dict[str, str]:
    """The catalogue's third parties (recipient id -> name): every recipient but the
    controller, which is the platform itself."""
    controller = RecipientKind.CONTROLLER
    return {rid: r.name for rid, r in catalogue.recipients.items() if r.kind is not controller}


def partner_webhooks(catalogue: Catalogue, receiver_url: str) -> dict[str, Webhook]:
    """A webhook at the demo receiver for each third party, signed with the demo secret."""
    base = receiver_url.rstrip("/") + WEBHOOK_PATH
    return {
        rid: Webhook.model_validate({"url": base + rid, "secret_env": SECRET_ENV})
        for rid in partners(catalogue)
    }


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Received:
    """A delivery whose signature checked out: acknowledged."""

    recipient: str
    kind: str  # consentry.opt_out or consentry.erasure
    event_id: str
    subject: str | None
    subject_ref: str | None
    permission: str | None
    reason: str | None
    at: datetime
    repeat: bool = False  # already received: acknowledged again, not listed twice
    status: int = 200

    def describe(self) -> str:
        if self.kind == ERASURE:
            what = f"an erasure of subject ref {(self.subject_ref or '?')[:12]}…"
        elif self.kind == OPT_OUT:
            what = f"an opt-out of {self.permission} for {self.subject} ({self.reason})"
        else:
            what = f"a delivery of type {self.kind or '?'}"
        again = " again (already received)" if self.repeat else ""
        return f"received {what}{again}: signature verified, acknowledged ({self.status})"


@dataclass(frozen=True, slots=True)
class Refused:
    """A delivery the receiver turned down, and why."""

    recipient: str
    status: int
    why: str
    at: datetime

    def describe(self) -> str:
        return f"refused a delivery ({self.status}): {self.why}"


Outcome = Received | Refused


class PartnerInbox:
    """What the partners received: checks each delivery and remembers the last ones."""

    def __init__(
        self,
        secret: str,
        names: Mapping[str, str],
        keep: int = KEEP,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._secret = secret
        self.names = dict(names)
        self.clock = clock
        self._lock = threading.Lock()
        self._received: deque[Received] = deque(maxlen=keep)
        self._refused: deque[Refused] = deque(maxlen=keep)
        self._seen: dict[tuple[str, str], None] = {}

    def refuse(self, recipient: str, status: int, why: str) -> Refused:
        refused = Refused(recipient, status, why, self.clock())
        with self._lock:
            self._refused.appendleft(refused)
        return refused

    def receive(
        self, recipient: str, signature: str | None, event_id: str | None, body: bytes
    ) -> Outcome:
        """Check one delivery as a partner must: known endpoint, valid signature made within
        the replay window over exactly this body, then dedupe on the event id."""
        if recipient not in self.names:
            return self.refuse(recipient, 404, "no such partner")
        if not signature or not verify_signature(self._secret, signature, body):
            why = f"{SIGNATURE_HEADER} missing, wrong, or outside the replay window"
            return self.refuse(recipient, 401, why)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return self.refuse(recipient, 400, "the body is not a JSON object")
        event = event_id or payload.get("event_id")
        if not isinstance(event, str) or not event:
            return self.refuse(recipient, 400, f"no {EVENT_HEADER}")

        def text(name: str) -> str | None:
            value = payload.get(name)
            return str(value) if value is not None else None

        received = Received(
            recipient=recipient,
            kind=str(payload.get("type", "")),
            event_id=event,
            subject=text("subject"),
            subject_ref=text("subject_ref"),
            permission=text("permission"),
            reason=text("reason"),
            at=self.clock(),
        )
        key = (recipient, event)
        with self._lock:
            if key in self._seen:
                return replace(received, repeat=True)
            self._seen[key] = None
            if len(self._seen) > REMEMBERED:
                del self._seen[next(iter(self._seen))]
            self._received.appendleft(received)
        return received

    def received(self, recipient: str | None = None) -> list[Received]:
        """Newest first."""
        with self._lock:
            return [r for r in self._received if recipient is None or r.recipient == recipient]

    def refused(self) -> list[Refused]:
        with self._lock:
            return list(self._refused)

    def as_json(self) -> dict[str, Any]:
        def row(item: Received | Refused) -> dict[str, Any]:
            return {**asdict(item), "at": item.at.isoformat()}

        return {
            "received": [row(r) for r in self.received()],
            "refused": [row(r) for r in self.refused()],
        }

    def page(self) -> str:
        """The inbox as a small HTML page, each partner with what it received, newest first."""
        e = html.escape
        sections = []
        for rid, name in self.names.items():
            rows = "".join(
                f"<tr><td>{e(r.at.strftime('%Y-%m-%d %H:%M:%S'))} UTC</td>"
                f"<td>{e(r.describe())}</td><td><code>{e(r.event_id)}</code></td></tr>"
                for r in self.received(rid)
            )
            body = (
                f"<table><tr><th>when</th><th>what</th><th>event</th></tr>{rows}</table>"
                if rows
                else "<p>Nothing received yet.</p>"
            )
            sections.append(f"<h2>{e(name)} <small>({e(rid)})</small></h2>{body}")
        refused = "".join(
            f"<li>{e(r.at.strftime('%Y-%m-%d %H:%M:%S'))} UTC, {e(r.recipient)}: "
            f"{e(r.describe())}</li>"
            for r in self.refused()
        )
        if refused:
            sections.append(f"<h2>Refused deliveries</h2><ul>{refused}</ul>")
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta http-equiv="refresh" content="5">'
            "<title>Demo partners: what they received</title></head><body>"
            "<h1>Demo partners: what they received</h1>"
            "<p>Each partner checks the signature of every opt-out and erasure consentry sends "
            "it and acknowledges the valid ones. Withdraw a sharing permission on the "
            "Permissions page to see one arrive (this page refreshes every 5 s).</p>"
            + "".join(sections)
            + "</body></html>"
        )


class PartnerReceiver:
    """The inbox over HTTP on ``host:port`` (0: a free port), in a daemon thread.
    ``on_outcome`` hears of every delivery, acknowledged or refused (the demo prints it)."""

    def __init__(
        self,
        inbox: PartnerInbox,
        port: int = 0,
        host: str = "127.0.0.1",
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.inbox = inbox
        self.on_outcome = on_outcome
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="demo-partners",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _outcome(self, outcome: Outcome) -> None:
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "consentry-demo-partner"

            def _answer(self, status: int, content: bytes, media: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(content)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(content)

            def _json(self, status: int, value: Mapping[str, Any]) -> None:
                media = "application/json" if status < 400 else "application/problem+json"
                self._answer(status, json.dumps(value).encode(), media)

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                url = urlsplit(self.path)
                path = url.path
                tag = tags.serve(path, url.query, self.headers.get("Host"))
                if tag is not None:
                    self.send_response(tag.status)
                    self.send_header("Content-Type", tag.media)
                    self.send_header("Content-Length", str(len(tag.body)))
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    self.wfile.write(tag.body)
                elif path == "/":
                    page = receiver.inbox.page().encode()
                    self._answer(200, page, "text/html; charset=utf-8")
                elif path == "/received":
                    self._json(200, receiver.inbox.as_json())
                else:
                    self._json(404, {"title": "Not Found", "status": 404, "detail": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                recipient = path.removeprefix(WEBHOOK_PATH) if path.startswith(WEBHOOK_PATH) else ""
                length = self.headers.get("Content-Length", "")
                if not length.isdigit():
                    outcome: Outcome = receiver.inbox.refuse(recipient, 411, "no Content-Length")
                elif int(length) > MAX_BODY:
                    outcome = receiver.inbox.refuse(recipient, 413, "body too large")
                else:
                    body = self.rfile.read(int(length))
                    outcome = receiver.inbox.receive(
                        recipient,
                        self.headers.get(SIGNATURE_HEADER),
                        self.headers.get(EVENT_HEADER),
                        body,
                    )
                if isinstance(outcome, Received):
                    self._json(200, {"acknowledged": outcome.event_id})
                else:
                    title = "Unauthorized" if outcome.status == 401 else "Refused"
                    problem = {"title": title, "status": outcome.status, "detail": outcome.why}
                    self._json(outcome.status, problem)
                receiver._outcome(outcome)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # the demo prints one line per delivery instead

        return Handler
