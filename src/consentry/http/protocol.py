"""The HTTP/1.1 protocol ``consentry serve`` runs: uvicorn's httptools protocol with a bound on
the request head.

uvicorn's httptools protocol has no limit on the request line and headers: a client could send
megabytes of header and the parser would buffer them all before the app saw anything. Here the
bytes received while a request's head is incomplete are counted; past ``MAX_HEAD`` the request
is answered 431, reading stops and the connection is closed a second later, so a head never
costs more than ``MAX_HEAD`` plus one read of the socket.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD = 64 * 1024
LINGER = 1.0  # seconds between the 431 and closing the connection

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/problem+json\r\n"
    b"connection: close\r\n"
)
_BODY = (
    b'{"type":"https://consentry.example.org/problems/headers_too_large",'
    b'"title":"Request Header Fields Too Large","status":431,'
    b'"detail":"request line and headers over %d bytes","code":"headers_too_large"}' % MAX_HEAD
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # until the first request's headers are complete
        self._head_bytes = 0
        self._boundaries = 0  # heads or messages that ended during the current read
        self._refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._boundaries += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what comes next on this connection is another request's head
        self._boundaries += 1

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._boundaries = 0
        super().data_received(data)
        if not self._in_head or self._boundaries:
            # In a body, or a head or message ended during this read: a new head (if any)
            # starts within it and is counted from the next read on.
            self._head_bytes = 0
        else:  # the whole read belongs to one head that is still incomplete
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
                self._refuse()

    def _refuse(self) -> None:
        self._refused = True
        self.logger.warning("request head over %d bytes: answered 431", MAX_HEAD)
        self.transport.write(_TOO_LARGE + b"content-length: %d\r\n\r\n" % len(_BODY) + _BODY)
        # Stop reading, and close a moment later: closing with the client's bytes still unread
        # resets the connection, and the client would lose the answer with it.
        self.transport.pause_reading()
        self.loop.call_later(LINGER, self.transport.close)
