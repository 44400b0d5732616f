"""Device subjects: an anonymous visitor is a subject named by a first-party cookie.

The cookie holds ``device-<32 hex>`` signed with HMAC-SHA256 (a key derived from the subject-token
secret, purpose "device"), so it cannot be forged into another subject's id: an id that does
not start with ``device-`` or whose signature fails is ignored and a new device is started. The
visitor's script then gets a short-lived subject token for that id alone, with which it reads its
signals and records its choices through the ordinary subject routes.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta

from consentry.config import Settings
from consentry.http.session import Signer
from consentry.services.tokens import TokenService

COOKIE = "consentry_device"
PREFIX = "device-"
COOKIE_TTL = 395 * 24 * 3600  # 13 months, renewed on each visit
TOKEN_TTL = timedelta(hours=1)


class DevicesUnavailable(Exception):
    """No shared secret to sign device cookies and tokens with (an ES256-only setup)."""


class Devices:
    def __init__(self, settings: Settings) -> None:
        secret = settings.jwt_secret_value()
        self.available = secret is not None
        self._signer = Signer(secret)
        self._tokens = TokenService(settings)

    def _check(self) -> None:
        if not self.available:
            raise DevicesUnavailable(
                "device subjects need CONSENTRY_JWT_SECRET (the cookie and the visitor's token "
                "are signed with it)"
            )

    def start(self) -> str:
        self._check()
        return PREFIX + secrets.token_hex(16)

    def cookie(self, subject: str) -> str:
        self._check()
        return self._signer.sign("device", {"sub": subject, "iat": int(time.time())})

    def read(self, cookie: str | None) -> str | None:
        """The device subject a cookie names, or None (absent, forged, expired, not a device)."""
        if not self.available:
            return None
        value = self._signer.unsign("device", cookie, COOKIE_TTL)
        subject = value.get("sub") if value else None
        if not isinstance(subject, str) or not subject.startswith(PREFIX) or len(subject) > 64:
            return None
        return subject

    def token(self, subject: str) -> str:
        self._check()
        return self._tokens.issue(subject, TOKEN_TTL)
