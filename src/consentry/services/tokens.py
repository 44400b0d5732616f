"""Subject tokens: JWTs the platform signs, whose ``sub`` is the subject id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from consentry.config import Settings


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self.secret = settings.jwt_secret_value()
        self.public_key = settings.jwt_public_key
        self.issuer = settings.jwt_issuer

    def verify(self, token: str) -> str | None:
        """The subject id of a valid token; None if forged, expired, alg none or malformed."""
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
                options={"require": ["sub", "exp"]},
            )
        except jwt.PyJWTError:
            return None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 200:
            return None
        return subject

    def issue(self, subject: str, ttl: timedelta = timedelta(hours=12)) -> str:
        """Sign a token with the shared secret (demo and development; platforms sign their own)."""
        if not self.secret:
            raise ValueError("no CONSENTRY_JWT_SECRET to sign with (ES256 setups sign elsewhere)")
        now = datetime.now(UTC)
        claims: dict[str, object] = {"sub": subject, "iat": now, "exp": now + ttl}
        if self.issuer:
            claims["iss"] = self.issuer
        return jwt.encode(claims, self.secret, algorithm="HS256")
