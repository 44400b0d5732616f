"""Per-subject encryption of personal fields in the ledger ("crypto-shredding").

Each subject has a random 256-bit key. Personal fields of ledger events (options, channel) are
stored sealed with AES-256-GCM under that key; the event hash covers the sealed form. Erasure
deletes the key: the ciphertext stays, unreadable, and the hash chain still verifies.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1:"
SEALED_KEY = "$sealed"


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal_text(key: bytes, plaintext: str, aad: bytes) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), aad)
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def open_text(key: bytes, token: str, aad: bytes) -> str | None:
    """The plaintext, or None when the token is not ours or was altered."""
    if not token.startswith(PREFIX):
        return None
    try:
        raw = base64.urlsafe_b64decode(token[len(PREFIX) :])
        return AESGCM(key).decrypt(raw[:12], raw[12:], aad).decode()
    except (ValueError, InvalidTag):
        return None


def seal_options(key: bytes, options: Mapping[str, Any], aad: bytes) -> dict[str, Any]:
    if not options:
        return {}
    text = json.dumps(dict(options), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {SEALED_KEY: seal_text(key, text, aad)}


def open_options(key: bytes | None, stored: Mapping[str, Any], aad: bytes) -> dict[str, Any]:
    """Plain options from their stored form; empty when the key was shredded."""
    token = stored.get(SEALED_KEY)
    if not isinstance(token, str):
        return dict(stored)
    if key is None:
        return {}
    text = open_text(key, token, aad)
    return json.loads(text) if text is not None else {}
