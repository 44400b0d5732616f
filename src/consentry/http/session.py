"""The page's session cookie, CSRF tokens and one-shot flash messages, signed with HMAC-SHA256.

A session holds the subject id, when it was issued and a random nonce; the CSRF token is an HMAC
of that nonce, so it is tied to the session without being stored anywhere. The server also keeps
a row per session (``storage/sessions.py``, by the nonce's SHA-256): a well-signed cookie counts
only while its row exists, so logout and erasure end every session of the subject at once. The
day the platform says the account's earlier data was erased (the token's ``erased_on``) rides
in the cookie only, for the page's notice; the server keeps it nowhere. The
key is derived from the subject-token secret; with no shared secret (ES256 setups) a
per-process key is used, which means sessions end on restart and need one worker (or sticky
sessions).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

SESSION_COOKIE = "consentry_session"
FLASH_COOKIE = "consentry_flash"
LOGIN_COOKIE = "consentry_login"
# The language the customer chose (or their account's language): it sticks across visits.
LANG_COOKIE = "consentry_lang"
LANG_TTL = 365 * 24 * 3600
SESSION_TTL = 12 * 3600
FLASH_TTL = 300
MAX_COOKIE = 3800


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    subject: str
    issued_at: int
    nonce: str
    erased_on: date | None = None  # from the sign-in token: earlier data erased that day


class Signer:
    def __init__(self, secret: str | None) -> None:
        material = secret.encode() if secret else secrets.token_bytes(32)
        self._key = hmac.new(material, b"consentry.web.v1", hashlib.sha256).digest()

    def _mac(self, purpose: str, payload: bytes) -> str:
        return _b64(hmac.new(self._key, purpose.encode() + b"|" + payload, hashlib.sha256).digest())

    def sign(self, purpose: str, value: dict[str, Any]) -> str:
        payload = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(payload)}.{self._mac(purpose, payload)}"

    def unsign(self, purpose: str, token: str | None, max_age: int) -> dict[str, Any] | None:
        """The signed value, or None when absent, tampered with, malformed or too old."""
        if not token or len(token) > MAX_COOKIE or token.count(".") != 1:
            return None
        body, mac = token.split(".")
        try:
            payload = _unb64(body)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac(purpose, payload)):
            return None
        try:
            value = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        issued = value.get("iat")
        if not isinstance(issued, int) or not 0 <= time.time() - issued <= max_age:
            return None
        return value

    # -- sessions ----------------------------------------------------------------------------
    def new_session(self, subject: str, erased_on: date | None = None) -> tuple[Session, str]:
        session = Session(subject, int(time.time()), secrets.token_urlsafe(16), erased_on)
        value: dict[str, Any] = {"sub": subject, "iat": session.issued_at, "n": session.nonce}
        if erased_on is not None:
            value["e"] = erased_on.isoformat()
        return session, self.sign("session", value)

    def session(self, cookie: str | None) -> Session | None:
        value = self.unsign("session", cookie, SESSION_TTL)
        if value is None:
            return None
        subject, nonce = value.get("sub"), value.get("n")
        if not isinstance(subject, str) or not subject or not isinstance(nonce, str):
            return None
        erased = value.get("e")
        try:
            day = date.fromisoformat(erased) if isinstance(erased, str) else None
        except ValueError:
            return None
        return Session(subject, int(value["iat"]), nonce, day)

    # -- CSRF ----------------------------------------------------------------------------------
    def csrf_token(self, nonce: str) -> str:
        return self._mac("csrf", nonce.encode())

    def csrf_ok(self, nonce: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(nonce), token or "")

    # -- flash ---------------------------------------------------------------------------------
    def flash(self, value: dict[str, Any]) -> str:
        return self.sign("flash", {**value, "iat": int(time.time())})

    def read_flash(self, cookie: str | None) -> dict[str, Any] | None:
        return self.unsign("flash", cookie, FLASH_TTL)
