"""Security headers on every response, and secrets kept out of the access log.

Headers a route already set win (the Permissions page sends its own Content-Security-Policy).
API answers get a CSP that allows nothing (they are data, never rendered), every answer gets
``nosniff``, ``Referrer-Policy: no-referrer``, ``frame-ancestors 'none'``/``X-Frame-Options``;
answers about a subject, and any answer to a request that carried a credential, get
``Cache-Control: no-store``. HSTS is sent over https, or always when ``hsts`` is set (behind a
proxy that terminates TLS).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.config import Settings

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc load their own scripts: they only get the framing rule.
DOCS_CSP = "frame-ancestors 'none'"
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
HSTS = "max-age=63072000; includeSubDomains"
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def _private(scope: Scope) -> bool:
    if scope["path"].startswith("/v1/subjects/"):
        return True
    return any(key == b"authorization" for key, _ in scope.get("headers", ()))


def _encoded(pairs: list[tuple[str, str]]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((name.lower().encode(), value.encode()) for name, value in pairs)


_ALWAYS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
]
_AFTER_CSP = [
    ("Permissions-Policy", PERMISSIONS_POLICY),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]
_API = _encoded([*_ALWAYS, ("Content-Security-Policy", API_CSP), *_AFTER_CSP])
_DOCS = _encoded([*_ALWAYS, ("Content-Security-Policy", DOCS_CSP), *_AFTER_CSP])
_NO_STORE = _encoded([("Cache-Control", "no-store")])
_HSTS = _encoded([("Strict-Transport-Security", HSTS)])


class SecurityHeaders:
    """Pure ASGI: adds each header the answer does not already carry (raw header names are
    compared lower-cased, as ``MutableHeaders.setdefault`` does)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hsts = settings.hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = _DOCS if scope["path"] in DOCS_PATHS else _API
        if _private(scope):
            wanted += _NO_STORE
        if self.hsts or scope.get("scheme") == "https":
            wanted += _HSTS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {bytes(name).lower() for name, _ in headers}
                headers.extend(pair for pair in wanted if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- the access log --------------------------------------------------------------------------
# Query parameters whose values are credentials (the page accepts ?token= once, then redirects).
# Names are compared after percent-decoding, as the app reads them: ?tok%65n= is ?token=.
_SECRET_NAMES = frozenset(
    {"token", "access_token", "id_token", "key", "api_key", "apikey", "secret", "password"}
)
_QUERY_PAIR = re.compile(r"([?&])([^=&\s]*)=([^&\s]*)")


def _redact_pair(match: re.Match[str]) -> str:
    name = unquote_plus(match.group(2)).strip().lower()
    if name in _SECRET_NAMES:
        return f"{match.group(1)}{match.group(2)}=[redacted]"
    return match.group(0)


# Subject ids in paths: the log names no subject, so erasure leaves nothing of one there.
_SUBJECT_PATH = re.compile(r"(/v1/subjects/)[^/?\s\"]+")


def redact(text: str) -> str:
    return _SUBJECT_PATH.sub(r"\1~", _QUERY_PAIR.sub(_redact_pair, text))


class RedactSecrets(logging.Filter):
    """Blanks credential values in query strings of access-log lines (uvicorn logs the path
    with its query; a subject token in ``?token=`` would otherwise land in the log) and the
    subject id of ``/v1/subjects/{sid}`` paths (written as ``~``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_log_filter() -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


def wrap(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` with the security headers (and the access log filter installed)."""
    install_log_filter()
    return SecurityHeaders(app, settings)
