"""Subject tokens: JWTs the platform signs, whose ``sub`` is the subject id."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from consentry.config import Settings


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self.secret = settings.jwt_secret_value()
        self.public_key = settings.jwt_public_key
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.max_lifetime = settings.jwt_max_lifetime

    def verify(self, token: str) -> str | None:
        """The subject id of a valid token; None if forged, expired, alg none or malformed,
        without the configured issuer or audience, or living longer than ``max_lifetime``."""
        key: str | None
        if self.public_key:
            key, algorithms = self.public_key, ["ES256"]
        else:
            key, algorithms = self.secret, ["HS256"]
        if not key:
            return None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["sub", "exp"]},
            )
        except jwt.PyJWTError:
            return None
        if not self._short_lived(claims):
            return None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 200:
            return None
        return subject

    def _short_lived(self, claims: dict[str, Any]) -> bool:
        issued, expires = claims.get("iat"), claims.get("exp")
        if not isinstance(expires, int | float):
            return False
        start = issued if isinstance(issued, int | float) else time.time()
        return expires - start <= self.max_lifetime

    def issue(self, subject: str, ttl: timedelta = timedelta(hours=12)) -> str:
        """Sign a token with the shared secret (demo and development; platforms sign their own)."""
        if not self.secret:
            raise ValueError("no CONSENTRY_JWT_SECRET to sign with (ES256 setups sign elsewhere)")
        now = datetime.now(UTC)
        claims: dict[str, object] = {"sub": subject, "iat": now, "exp": now + ttl}
        if self.issuer:
            claims["iss"] = self.issuer
        if self.audience:
            claims["aud"] = self.audience
        return jwt.encode(claims, self.secret, algorithm="HS256")
