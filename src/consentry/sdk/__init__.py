"""The consentry client SDK: ask "may I use this data?" in-process, in under a microsecond.

::

    from consentry.sdk import Consentry

    with Consentry("http://127.0.0.1:8000", api_key=KEY) as c:
        c.allows("user-42", "advertising.personalised", ["behaviour.browsing"])

Installed by ``pip install consentry`` (no server dependencies). Everything public is listed in
``__all__``; the modules starting with ``_`` are private. See docs/sdk.md.
"""

from __future__ import annotations

from consentry.domain.rules import Decision, Reason
from consentry.sdk._client import Check, Consentry, Stats
from consentry.sdk._errors import (
    AuthenticationError,
    ConsentryError,
    CursorExpired,
    Denied,
    PermissionDenied,
    ProtocolError,
    ServerError,
    StreamCursorLost,
    TransportError,
)

__all__ = [
    "AuthenticationError",
    "Check",
    "Consentry",
    "ConsentryError",
    "CursorExpired",
    "Decision",
    "Denied",
    "PermissionDenied",
    "ProtocolError",
    "Reason",
    "ServerError",
    "Stats",
    "StreamCursorLost",
    "TransportError",
]

# Show the SDK's own classes as consentry.sdk.X, not consentry.sdk._module.X (as httpx does).
# Decision and Reason stay domain classes: the server shares them.
for _public in (
    AuthenticationError,
    Check,
    Consentry,
    ConsentryError,
    CursorExpired,
    Denied,
    PermissionDenied,
    ProtocolError,
    ServerError,
    StreamCursorLost,
    TransportError,
):
    _public.__module__ = "consentry.sdk"
del _public
