"""A bounded memory of recently seen event ids, for consumers that drop redelivered changes."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """The last ``size`` event ids, oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, event_id: str) -> bool:
        """True when the id is new."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True
