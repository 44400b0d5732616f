"""Verified service keys remembered for a few seconds, for the decision hot path.

Checking a key costs a database read (a hash lookup in ``api_keys``); the decision endpoints
would pay it on every request. Keys that verified are remembered for ``ttl`` seconds, by the
SHA-256 of the secret (the secret itself is not kept), so a revoked key stops working on these
endpoints within ``ttl``. Failures are never remembered.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
DEFAULT_TTL = 5.0
MAX_KEYS = 10_000


class KeyCache(Generic[T]):
    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def get(self, secret: str) -> T | None:
        found = self._entries.get(self._digest(secret))
        if found is None or found[0] < self.clock():
            return None
        return found[1]

    def put(self, secret: str, value: T) -> None:
        with self._lock:
            if len(self._entries) >= MAX_KEYS:
                self._entries.clear()
            self._entries[self._digest(secret)] = (self.clock() + self.ttl, value)

    def clear(self) -> None:
        """Forget every remembered key (after a revocation in this process)."""
        with self._lock:
            self._entries.clear()
