"""What the bridge holds for the router: the current state, and a queue while disconnected.

An :class:`Outbox` keeps

- **the current state**: the newest *retained* event of every exported key
  (``Event.key``), connected or not. A newer event of a key replaces the
  older one; if the older one was never sent (it arrived while
  disconnected) the replacement is counted as ``compacted``. A retained
  event with payload ``None`` (which clears its key on the hub) is kept like
  any other, so the clearing reaches the router too;
- **the queue**: non-retained events that arrived while disconnected, in order.

On (re)connection :meth:`Outbox.connect` returns everything to send, in
arrival order: the queue and the *whole* current state, each key once with
its newest value. The state is re-sent even for keys sent before the
connection dropped, on purpose: the router keeps nothing, and events written
into a TCP connection as it dies are lost without a trace, so re-sending is
the only way to be sure; for retained state a duplicate is harmless.
:meth:`Outbox.select` returns the state under a prefix (answering a resync
request, see :mod:`gateways.bridge`).

Bounds: state and queue together hold at most ``max_events`` events and
``max_bytes`` bytes (``None``: no byte bound). When a new event goes over,
the oldest *non-retained* events go first (counted ``dropped``); only when
the queue is empty does the key updated longest ago leave the state —
counted ``lost`` if it was never sent (state lost: logged by the bridge at
error level) and ``forgotten`` if it was (only a later reconnect or resync
will not repeat it).

Plain state, not thread-safe: the bridge calls it under its own lock.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Iterator

from dsmt.event import Event

COUNTERS = ("compacted", "dropped", "lost", "forgotten", "flushed", "resent")


@dataclass(slots=True)
class _Entry:
    event: Event
    size: int
    order: int
    sent: bool


class Outbox:
    """The current state plus the disconnected-time queue (see the module docstring)."""

    def __init__(self, max_events: int, max_bytes: int | None = None) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.connected = False
        self.bytes = 0
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._state: OrderedDict[str, _Entry] = OrderedDict()
        self._queue: deque[_Entry] = deque()
        self._order = itertools.count()
        self._unsent = 0  # state entries not sent yet

    def add(self, event: Event, size: int) -> bool:
        """Take an exported event of ``size`` bytes; True if it is to be sent now."""
        if event.retain:
            old = self._state.pop(event.key, None)
            if old is not None:
                self.bytes -= old.size
                if not old.sent:
                    self.counters["compacted"] += 1
                    self._unsent -= 1
            self._state[event.key] = _Entry(event, size, next(self._order), self.connected)
            self.bytes += size
            self._unsent += not self.connected
        elif self.connected:
            return True
        else:
            self._queue.append(_Entry(event, size, next(self._order), False))
            self.bytes += size
        self._bound()
        return self.connected

    def connect(self) -> list[Event]:
        """Now connected: every event to send, oldest first (see the module docstring)."""
        self.connected = True
        state = list(self._state.values())
        flushed = len(self._queue) + self._unsent
        self._unsent = 0
        self.counters["flushed"] += flushed
        self.counters["resent"] += len(state) + len(self._queue) - flushed
        entries = sorted(itertools.chain(state, self._queue), key=lambda e: e.order)
        for entry in state:
            entry.sent = True
        self.bytes -= sum(e.size for e in self._queue)
        self._queue.clear()
        return [e.event for e in entries]

    def disconnect(self) -> None:
        self.connected = False

    def select(self, prefix: str) -> list[Event]:
        """The current state under ``prefix``, oldest update first."""
        return [e.event for e in self._state.values() if e.event.key.startswith(prefix)]

    @property
    def buffered(self) -> int:
        """Events waiting for a connection: the queue plus state never sent."""
        return len(self._queue) + self._unsent

    @property
    def keys(self) -> int:
        return len(self._state)

    def __len__(self) -> int:
        return len(self._state) + len(self._queue)

    def __iter__(self) -> Iterator[Event]:
        return (e.event for e in sorted(itertools.chain(self._state.values(), self._queue),
                                        key=lambda e: e.order))

    def _bound(self) -> None:
        while len(self) > self.max_events or (
                self.max_bytes is not None and self.bytes > self.max_bytes):
            if self._queue:
                entry = self._queue.popleft()
                self.counters["dropped"] += 1
            else:
                _, entry = self._state.popitem(last=False)
                self.counters["forgotten" if entry.sent else "lost"] += 1
                self._unsent -= not entry.sent
            self.bytes -= entry.size
