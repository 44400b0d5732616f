"""Credentials: the bearer token a request carries, and the caller it names.

Every entrypoint reads ``Authorization: Bearer <token>`` through :func:`bearer`; a token that
starts with ``csk_`` is a platform service's key, anything else a subject token (a JWT whose
``sub`` is the subject id). Verifying a key is a database read: the hot paths (decisions, the
change feed, the rate limits, the fast paths) go through :func:`remembered_key`, which keeps
verified keys a few seconds in ``container.replica.keys`` (``feed.keycache``); every other
route verifies the key each time, so a revoked key is refused there at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.types import Scope as AsgiScope

from consentry.bootstrap import Container
from consentry.http.problems import Problem
from consentry.scopes import Scope
from consentry.services.keys import PREFIX


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization`` header value ``Bearer <token>`` (the scheme in any
    case, the token without surrounding spaces); None for no header, another scheme or an
    empty token."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def is_service_key(token: str) -> bool:
    return token.startswith(PREFIX)


def raw_header(scope: AsgiScope, name: bytes) -> bytes | None:
    """The first value of a (lower-case) header of an ASGI request, as sent."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def header_text(scope: AsgiScope, name: bytes) -> str | None:
    """As :func:`raw_header`, decoded as HTTP headers are (latin-1)."""
    raw = raw_header(scope, name)
    return None if raw is None else raw.decode("latin-1")


def scope_bearer(scope: AsgiScope) -> str | None:
    """The bearer token of an ASGI request (see :func:`bearer`)."""
    return bearer(header_text(scope, b"authorization"))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a platform service (by key) or a subject (by token)."""

    credential: str
    scopes: frozenset[Scope] = frozenset()
    subject: str | None = None
    name: str = ""  # a service key's label (``consentry keys create --name``)

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes


async def verify_key(container: Container, token: str) -> Principal | None:
    """The principal of a service key (``csk_…``), or None when unknown or revoked."""
    key = await run_in_threadpool(container.keys.verify, token)
    if key is None:
        return None
    return Principal(credential=f"key:{key.key_id}", scopes=key.scopes, name=key.name)


async def remembered_key(container: Container, token: str) -> Principal | None:
    """As :func:`verify_key`, from the key cache when the key verified a few seconds ago (a
    key that verifies now is remembered). Raises as ``verify_key`` does when the database is
    away."""
    cache = container.replica.keys
    found = cache.get(token)
    if isinstance(found, Principal):
        return found
    principal = await verify_key(container, token)
    if principal is not None:
        cache.put(token, principal)
    return principal


async def authenticate(
    container: Container, header: str | None, *, remember: bool = False
) -> Principal:
    """The caller an ``Authorization`` header names, or a 401 problem. ``remember``: service
    keys through the key cache (:func:`remembered_key`)."""
    token = bearer(header)
    if token is None:
        raise Problem(401, "send Authorization: Bearer <service key or subject token>")
    if is_service_key(token):
        check = remembered_key if remember else verify_key
        principal = await check(container, token)
        if principal is None:
            raise Problem(401, "unknown or revoked API key", code="invalid_credentials")
        return principal
    subject = container.tokens.verify(token)
    if subject is None:
        raise Problem(401, "invalid or expired subject token", code="invalid_credentials")
    return Principal(credential=f"subject:{subject}", subject=subject)
