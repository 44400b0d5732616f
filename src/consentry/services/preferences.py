"""The customer's page settings, kept on the server so they follow them to every device: the
language the page speaks and the IANA time zone its times are shown in."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Final

from consentry.domain.errors import InvalidPreference
from consentry.services._ledger_io import retrying, utcnow
from consentry.storage import preferences as rows
from consentry.storage.database import Database
from consentry.storage.preferences import Preferences

__all__ = ["KEEP", "Keep", "Preferences", "PreferenceService", "known_zone"]
MAX_ZONE = 64


class Keep(Enum):
    """A setting left as it is."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def known_zone(name: str) -> bool:
    """An IANA time zone this system can convert to (``Europe/Paris``, ``UTC``)."""
    return len(name) <= MAX_ZONE and name in _zones()


class PreferenceService:
    def __init__(
        self, db: Database, locales: Iterable[str], clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.locales = tuple(locales)
        self.clock = clock

    def get(self, subject_id: str) -> Preferences:
        with self.db.read() as conn:
            return rows.get(conn, subject_id) or Preferences()

    def update(
        self,
        subject_id: str,
        *,
        locale: str | None | Keep = KEEP,
        time_zone: str | None | Keep = KEEP,
    ) -> Preferences:
        """Change the settings named (None clears one); raises ``InvalidPreference`` for a
        language the catalogue does not have or a zone that is not an IANA name."""
        if isinstance(locale, str) and locale not in self.locales:
            offered = ", ".join(self.locales)
            raise InvalidPreference(f"locale {locale[:20]!r} is not offered (one of: {offered})")
        if isinstance(time_zone, str) and not known_zone(time_zone):
            raise InvalidPreference(
                f"time_zone {time_zone[:MAX_ZONE]!r} is not an IANA time zone such as "
                "'Europe/Paris'"
            )

        return self._write(
            subject_id,
            lambda now: Preferences(
                now.locale if isinstance(locale, Keep) else locale,
                now.time_zone if isinstance(time_zone, Keep) else time_zone,
            ),
        )

    def first_time_zone(self, subject_id: str, time_zone: str) -> Preferences:
        """The browser's zone, kept only when the customer has none stored yet (a zone they
        picked themselves always wins)."""
        if not known_zone(time_zone):
            raise InvalidPreference(f"time_zone {time_zone[:MAX_ZONE]!r} is not an IANA time zone")
        return self._write(
            subject_id, lambda now: now if now.time_zone else Preferences(now.locale, time_zone)
        )

    def _write(self, subject_id: str, merge: Callable[[Preferences], Preferences]) -> Preferences:
        def once() -> Preferences:
            with self.db.write() as conn:
                now = rows.get(conn, subject_id) or Preferences()
                new = merge(now)
                if new != now:
                    rows.put(conn, subject_id, new, self.clock())
                return new

        return retrying(once)
