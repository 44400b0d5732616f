"""The SDK's exceptions. Every one of them is a :class:`ConsentryError`::

    ConsentryError
    ├── TransportError          the server could not be reached (connection, timeout)
    ├── ServerError             the server answered with an error status (.status, .problem)
    │   ├── AuthenticationError 401: the API key is unknown or revoked
    │   ├── PermissionDenied    403: the key lacks the "decide" scope
    │   └── CursorExpired       410: too far behind the change feed (the client reloads itself)
    │       └── StreamCursorLost    the NATS stream no longer holds the replica's place (reload)
    ├── ProtocolError           a snapshot or change line the client cannot read
    └── Denied                  raised by @requires when a check refuses (.decision)

Checks themselves never raise: a replica that cannot reach the server answers from what it
holds, and fails closed once that is older than its staleness bound.
"""

from __future__ import annotations

from typing import Any

from consentry.domain.rules import Decision


class ConsentryError(Exception):
    """Base class of every SDK error."""


class TransportError(ConsentryError):
    """The server could not be reached, or did not answer in time."""


class ServerError(ConsentryError):
    """The server answered with an error status; ``problem`` is its RFC 9457 body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        detail = problem.get("detail") or problem.get("title") or "error"
        super().__init__(f"{status}: {detail}")


class AuthenticationError(ServerError):
    """401: the API key is unknown or revoked."""


class PermissionDenied(ServerError):
    """403: the API key lacks the ``decide`` scope."""


class CursorExpired(ServerError):
    """410: the replica is too far behind the change feed; it reloads the snapshot."""


class StreamCursorLost(CursorExpired):
    """``follow="nats"``: the stream no longer holds the sequence the replica must read from
    (purged, expired, or recreated); the client reloads the snapshot and reads on from there."""

    def __init__(self, detail: str) -> None:
        super().__init__(410, {"detail": detail, "code": "stream_cursor_lost"})


class ProtocolError(ConsentryError):
    """The server sent a snapshot or change the client cannot read."""


class Denied(ConsentryError):
    """A use of personal data that ``@requires`` refused; ``decision`` says why."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(
            f"not allowed: {decision.reason.value}"
            + (f" (permission {decision.permission})" if decision.permission else "")
        )


def error_for(status: int, problem: dict[str, Any]) -> ServerError:
    kinds: dict[int, type[ServerError]] = {
        401: AuthenticationError,
        403: PermissionDenied,
        410: CursorExpired,
    }
    return kinds.get(status, ServerError)(status, problem)
