"""What the OS or browser granted the app on a subject's devices, as the apps report it.

A report replaces the device's previous one; decisions that use device data read them
(``decisions``), and the page lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.catalogue import Catalogue
from consentry.domain.errors import InvalidChange
from consentry.domain.state import DeviceReport
from consentry.services._ledger_io import utcnow
from consentry.storage import repository as repo
from consentry.storage.database import Database


@dataclass(eq=False)
class DeviceService:
    db: Database
    catalogue: Catalogue
    clock: Callable[[], datetime] = utcnow

    def report(
        self,
        subject_id: str,
        device_id: str,
        platform: str,
        app_version: str,
        os_permissions: Mapping[str, str],
    ) -> DeviceReport:
        known = {d.id: d for d in self.catalogue.device_permissions}
        for name, value in os_permissions.items():
            spec = known.get(name)
            if spec is None:
                raise InvalidChange(
                    f"unknown OS permission {name!r}; known: {', '.join(sorted(known))}"
                )
            if value not in spec.values:
                raise InvalidChange(
                    f"OS permission {name!r} cannot be {value!r}; one of: {', '.join(spec.values)}"
                )
        report = DeviceReport(device_id, platform, app_version, dict(os_permissions), self.clock())
        with self.db.write() as conn:
            repo.save_device(conn, report, subject_id)
        return report

    def reported(self, subject_id: str) -> list[DeviceReport]:
        with self.db.read() as conn:
            return repo.list_devices(conn, subject_id)
