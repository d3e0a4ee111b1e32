"""Event ids a router has already seen, so a mesh with cycles delivers once.

A bounded memory: at most ``size`` ids, each kept at most ``window``
seconds. An id forgotten early (a flood of more than ``size`` events within
the window) can at worst let a copy through, which the hop limit then
bounds; memory never grows past ``size``. Not thread-safe.
"""

from __future__ import annotations

from collections import OrderedDict


class SeenIds:
    def __init__(self, size: int, window: float) -> None:
        self.size = size
        self.window = window
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._seen

    def first_time(self, event_id: str, now: float) -> bool:
        """Remember ``event_id``; True if it was not seen within the window."""
        self._forget(now)
        if event_id in self._seen:
            return False
        self._seen[event_id] = now
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True

    def _forget(self, now: float) -> None:
        seen = self._seen
        horizon = now - self.window
        while seen:
            first = next(iter(seen.values()))
            if first > horizon:
                return
            seen.popitem(last=False)
