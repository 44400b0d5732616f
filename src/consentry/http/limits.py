"""Request size limits, applied before anything else reads the request.

``BodyLimit`` (pure ASGI, outside the rate limits and every credential check): a body announced
over ``MAX_BODY`` (or with a malformed ``Content-Length``) gets 413 at once; a body sent without
a length (``Transfer-Encoding: chunked``) is read here, up to ``MAX_BODY`` bytes and never past
them, then replayed to the app, or refused with 413 as soon as it passes the limit. So neither
authentication nor a route ever sees, buffers or parses more than ``MAX_BODY`` bytes, chunked
or not; the rest of an over-long body is never read (the server closes the connection). The fast
paths read their bodies with the same ``read_body`` and hand them on with ``replay``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.http.problems import problem_response

MAX_BODY = 1_000_000


def _too_long(length: bytes) -> bool:
    return not length.isdigit() or int(length) > MAX_BODY


def _refusal() -> ASGIApp:
    return problem_response(
        413,
        f"request body over {MAX_BODY} bytes",
        code="body_too_large",
        headers={"Connection": "close"},
    )


async def read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages, read up to the end of its body, and the body they carry; None
    for the body as soon as it passes ``MAX_BODY`` (nothing past that point is read)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            return messages, None
        if not message.get("more_body", False):
            break
    return messages, b"".join(chunks)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives the messages already read, then the real ones."""
    pending = list(messages)

    async def again() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return again


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for key, value in scope["headers"]:
            if key == b"content-length" and _too_long(value):
                await _refusal()(scope, receive, send)
                return
            if key == b"transfer-encoding":
                chunked = True  # the length is not known up front: count what arrives
        if chunked:
            messages, body = await read_body(receive)
            if body is None:
                await _refusal()(scope, receive, send)
                return
            receive = replay(messages, receive)
        await self.app(scope, receive, send)
