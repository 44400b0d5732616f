"""Subject tokens: JWTs the platform signs, whose ``sub`` is the subject id.

An optional ``erased_on`` claim (``YYYY-MM-DD``, a day not in the future) tells the page that
this account's earlier data was erased that day: the platform knows it, consentry does not keep
it (an erased chain is unlinkable from the id). A token whose ``erased_on`` is not such a day is
refused like a malformed one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jwt

from consentry.config import Settings

# The earliest offset from UTC in use (UTC+14): a day the platform calls today is never later
# than today there.
_EARLIEST_ZONE = timedelta(hours=14)


class ClaimInvalid(ValueError):
    """A claim of a well-signed token that does not hold what it must."""


@dataclass(frozen=True, slots=True)
class SubjectClaims:
    subject: str
    erased_on: date | None = None  # the platform says the earlier data was erased that day


def erased_on(value: object, now: datetime | None = None) -> date | None:
    """The ``erased_on`` claim as a day (None when absent); ClaimInvalid unless it is a
    ``YYYY-MM-DD`` calendar day that has begun somewhere on Earth by ``now``."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 10:
        raise ClaimInvalid("erased_on must be a day, YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise ClaimInvalid("erased_on must be a day, YYYY-MM-DD") from exc
    if day > ((now or datetime.now(UTC)) + _EARLIEST_ZONE).date():
        raise ClaimInvalid("erased_on is in the future")
    return day


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
        claims = self.verify_claims(token)
        return claims.subject if claims is not None else None

    def verify_claims(self, token: str) -> SubjectClaims | None:
        """As ``verify``, with the claims the page uses (None also for an invalid
        ``erased_on``)."""
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
        try:
            return SubjectClaims(subject, erased_on(claims.get("erased_on")))
        except ClaimInvalid:
            return None

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
