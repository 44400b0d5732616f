"""Signing consent receipts: Ed25519 keys, compact JWS (RFC 7515, alg EdDSA per RFC 8037), the
published JWK set, and the offline check of a receipt file.

No database and no clock: ``consentry receipt verify`` runs this on any machine with the file
and a JWK set. Every check is strict on purpose: a receipt whose bytes differ in any way from
what consentry issued does not verify (base64url must be canonical, JSON must have no duplicate
keys, and the downloaded file must be byte-for-byte as written by ``receipt_file``).

Keys are named by their RFC 7638 thumbprint, so a rotation gives the new key a new ``kid``
without any bookkeeping; retired public keys stay published so older receipts keep verifying.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consentry.config import DEMO_JWT_SECRET, Settings

ALG = "EdDSA"
JWS_TYPE = "consent-receipt+jws"
_B64U = re.compile(r"^[A-Za-z0-9_-]*$")
_COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)
_DEMO_SEED = b"consentry.receipts.demo-key.v1:"


class ReceiptKeyError(ValueError):
    """The configured receipt keys cannot be used (unreadable, not Ed25519, encrypted)."""


class ReceiptInvalid(ValueError):
    """A receipt or JWS failed verification; the message says which check failed."""


# ------------------------------------------------------------------------------- encodings


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str, what: str) -> bytes:
    """Strict base64url without padding: the text must be the one encoding of its bytes (the
    unused low bits of the last character must be zero), so no character can change unseen."""
    if not _B64U.match(text) or len(text) % 4 == 1:
        raise ReceiptInvalid(f"{what} is not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64u(data) != text:
        raise ReceiptInvalid(f"{what} is not canonical base64url (altered)")
    return data


def canonical_json(value: Any) -> bytes:
    """The bytes a receipt is signed over: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ReceiptInvalid(f"duplicate JSON key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ReceiptInvalid(f"{name} is not JSON")


def strict_json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ReceiptInvalid):
            raise
        raise ReceiptInvalid(f"{what} is not valid JSON: {exc}") from exc


# ------------------------------------------------------------------------------------ keys


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}


def key_id(key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of the public key."""
    jwk = public_jwk(key)
    members = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"))
    return b64u(hashlib.sha256(members.encode()).digest())


def demo_key() -> Ed25519PrivateKey:
    """Derived from the public demo secret: anyone can forge with it. Only ever used with
    --demo, where it keeps demo receipts verifiable across restarts without storing a key."""
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(_DEMO_SEED + DEMO_JWT_SECRET.encode()).digest()
    )


def _material(value: str, what: str) -> bytes:
    if "-----BEGIN" in value:
        return value.encode()
    try:
        return Path(value).expanduser().read_bytes()
    except OSError as exc:
        raise ReceiptKeyError(
            f"{what}: cannot read the key file {value!r}: {exc.strerror}"
        ) from exc


def _public_from_pem(block: bytes, what: str) -> Ed25519PublicKey:
    try:
        if b"PRIVATE KEY" in block.split(b"\n", 1)[0]:
            private = serialization.load_pem_private_key(block, password=None)
            key: object = private.public_key() if isinstance(private, Ed25519PrivateKey) else None
        else:
            key = serialization.load_pem_public_key(block)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ReceiptKeyError(f"{what}: not a usable unencrypted PEM key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ReceiptKeyError(f"{what}: not an Ed25519 key")
    return key


def _signing_key(material: bytes) -> Ed25519PrivateKey:
    what = "CONSENTRY_RECEIPT_SIGNING_KEY"
    try:
        key = serialization.load_pem_private_key(material.strip(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ReceiptKeyError(f"{what}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ReceiptKeyError(f"{what}: not an Ed25519 private key")
    return key


@dataclass(frozen=True)
class ReceiptKeys:
    """The key that signs new receipts (None: receipts are off) and every key that verifies."""

    signer: Ed25519PrivateKey | None
    published: tuple[Ed25519PublicKey, ...]
    demo: bool = False

    @property
    def kid(self) -> str | None:
        return key_id(self.signer.public_key()) if self.signer is not None else None

    def verifying_keys(self) -> dict[str, Ed25519PublicKey]:
        return {key_id(k): k for k in self.published}

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {
            "keys": [
                {**public_jwk(k), "kid": kid, "use": "sig", "alg": ALG}
                for kid, k in self.verifying_keys().items()
            ]
        }

    def sign(self, payload: bytes) -> str:
        if self.signer is None:
            raise ReceiptKeyError("no receipt signing key configured")
        return sign_jws(payload, self.signer)


@lru_cache(maxsize=16)
def _keys(signing: bytes | None, previous: bytes | None, demo: bool) -> ReceiptKeys:
    signer = _signing_key(signing) if signing is not None else (demo_key() if demo else None)
    published: list[Ed25519PublicKey] = [signer.public_key()] if signer is not None else []
    if previous is not None:
        blocks = [m.group(0).encode() for m in _PEM.finditer(previous.decode(errors="replace"))]
        if not blocks:
            raise ReceiptKeyError("CONSENTRY_RECEIPT_PREVIOUS_KEYS: no PEM block found")
        for index, block in enumerate(blocks, start=1):
            published.append(
                _public_from_pem(block, f"CONSENTRY_RECEIPT_PREVIOUS_KEYS (key {index})")
            )
    return ReceiptKeys(signer, tuple(published), demo=signing is None and demo)


def load_receipt_keys(settings: Settings) -> ReceiptKeys:
    """The receipt keys the settings name. Key files are read on each call (cheap), parsed once
    per content. Raises ReceiptKeyError when a configured key cannot be used."""
    secret = settings.receipt_signing_key
    signing = (
        _material(secret.get_secret_value(), "CONSENTRY_RECEIPT_SIGNING_KEY") if secret else None
    )
    prev = settings.receipt_previous_keys
    previous = _material(prev, "CONSENTRY_RECEIPT_PREVIOUS_KEYS") if prev else None
    return _keys(signing, previous, settings.demo)


def new_signing_key_pem() -> str:
    """A fresh Ed25519 private key as PKCS#8 PEM (for setup and tests)."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def public_pem(private_pem: str) -> str:
    key = _signing_key(private_pem.encode())
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# ------------------------------------------------------------------------------------- JWS


def sign_jws(payload: bytes, key: Ed25519PrivateKey) -> str:
    header = {"alg": ALG, "kid": key_id(key.public_key()), "typ": JWS_TYPE}
    signing_input = b64u(canonical_json(header)) + "." + b64u(payload)
    return signing_input + "." + b64u(key.sign(signing_input.encode("ascii")))


def parse_jwks(document: Any) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JWK set, by kid (the thumbprint when a key has none)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ReceiptKeyError('not a JWK set: expected {"keys": [...]}')
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") != "OKP":
            continue
        if entry.get("crv") != "Ed25519" or not isinstance(entry.get("x"), str):
            continue
        try:
            raw = b64u_decode(entry["x"], "JWK x")
            key = Ed25519PublicKey.from_public_bytes(raw)
        except (ReceiptInvalid, ValueError) as exc:
            raise ReceiptKeyError(f"JWK set: bad Ed25519 key {entry.get('kid')!r}") from exc
        kid = entry.get("kid")
        keys[kid if isinstance(kid, str) else key_id(key)] = key
    if not keys:
        raise ReceiptKeyError("the JWK set holds no Ed25519 key")
    return keys


def verify_jws(token: str, keys: Mapping[str, Ed25519PublicKey]) -> tuple[dict[str, Any], bytes]:
    """Check a compact JWS against ``keys`` (by kid); returns its header and payload bytes."""
    if not _COMPACT.match(token):
        raise ReceiptInvalid("not a compact JWS (three base64url parts joined by '.')")
    head, body, sig = token.split(".")
    header = strict_json(b64u_decode(head, "JWS header"), "JWS header")
    if not isinstance(header, dict):
        raise ReceiptInvalid("JWS header is not a JSON object")
    if header.get("alg") != ALG:
        raise ReceiptInvalid(f"JWS alg is {header.get('alg')!r}, expected {ALG!r}")
    if "crit" in header:
        raise ReceiptInvalid("JWS header has critical extensions this verifier does not know")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise ReceiptInvalid("JWS header names no key (kid)")
    key = keys.get(kid)
    if key is None:
        raise ReceiptInvalid(f"signed with key {kid!r}, which is not in the key set")
    payload = b64u_decode(body, "JWS payload")
    signature = b64u_decode(sig, "JWS signature")
    try:
        key.verify(signature, f"{head}.{body}".encode("ascii"))
    except InvalidSignature as exc:
        raise ReceiptInvalid("the signature does not match: the receipt was altered") from exc
    return header, payload


# ----------------------------------------------------------------------------- receipt files


def receipt_file(receipt: Mapping[str, Any], jws: str) -> bytes:
    """The downloadable receipt: the readable record and its JWS, in one fixed layout."""
    text = json.dumps({"receipt": receipt, "jws": jws}, ensure_ascii=False, indent=2)
    return (text + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    receipt: dict[str, Any]
    kid: str


def verify_receipt_file(data: bytes, keys: Mapping[str, Ed25519PublicKey]) -> VerifiedReceipt:
    """Verify a receipt file (as downloaded, or a bare compact JWS). Raises ReceiptInvalid on
    any difference from what was issued: signature, readable copy, or layout."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReceiptInvalid("the file is not UTF-8 text") from exc
    bare = text[:-1] if text.endswith("\n") else text
    if _COMPACT.match(bare):
        header, payload = verify_jws(bare, keys)
        receipt = strict_json(payload, "JWS payload")
        if not isinstance(receipt, dict):
            raise ReceiptInvalid("the signed payload is not a JSON object")
        return VerifiedReceipt(receipt, str(header["kid"]))
    document = strict_json(text, "the receipt file")
    if not isinstance(document, dict) or list(document) != ["receipt", "jws"]:
        raise ReceiptInvalid('not a consentry receipt: expected {"receipt": ..., "jws": ...}')
    jws, readable = document["jws"], document["receipt"]
    if not isinstance(jws, str) or not isinstance(readable, dict):
        raise ReceiptInvalid("not a consentry receipt: jws must be a string, receipt an object")
    header, payload = verify_jws(jws, keys)
    if canonical_json(readable) != payload:
        raise ReceiptInvalid("the readable receipt differs from the signed one")
    if receipt_file(readable, jws) != data:
        raise ReceiptInvalid("the file is not byte-for-byte as issued (edited or reformatted)")
    return VerifiedReceipt(readable, str(header["kid"]))
