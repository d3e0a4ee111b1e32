"""A bounded, thread-safe memory of event identities: what the bridge sent each way.

Loop prevention needs "have I seen this event go the other way?". An event
is identified by its sender and id (ids are unique per sender; two senders
may in principle stamp the same ``epoch.seq``). Only the newest
``capacity`` identities are remembered, so memory stays bounded; an echo
that comes back after more than ``capacity`` newer events would not be
recognised, which needs a router delay far beyond anything a live one has.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from dsmt.event import Event

Identity = tuple[str, "str | None", str]


def identity(event: Event) -> Identity:
    return (event.sender.service, event.sender.instance, event.id)


class RecentIds:
    """The newest ``capacity`` event identities added; safe from any thread."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[Identity, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, event: Event) -> None:
        key = identity(event)
        with self._lock:
            self._ids[key] = None
            self._ids.move_to_end(key)
            if len(self._ids) > self.capacity:
                self._ids.popitem(last=False)

    def __contains__(self, event: object) -> bool:
        if not isinstance(event, Event):
            return False
        key = identity(event)
        with self._lock:
            return key in self._ids

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)
