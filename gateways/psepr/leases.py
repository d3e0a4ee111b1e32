"""The router's lease table: who holds which subscription, and until when.

A lease is a subscription granted by the router (DESIGN.md §4): an owner
(one connection), an ``identifier`` chosen by the owner, the channel
``prefix`` it receives, an optional payload namespace ``type`` it is
restricted to, whether it brings the owner's own events back (``echo``, a
DSMT addition, default true) and a deadline. Registering an identifier the
owner already holds replaces that lease (a renewal); unregistering or
disconnecting removes it; the router calls :meth:`LeaseTable.expire` when
:meth:`LeaseTable.next_deadline` is due.

Pure bookkeeping: no I/O and no clock of its own; times are monotonic
seconds passed in by the caller. Not thread-safe: the router's event loop
owns it.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass
from typing import Hashable


@dataclass(slots=True, eq=False)
class Lease:
    """One granted subscription; ``expires`` is None while the owner lives (peer links)."""

    owner: Hashable
    identifier: str
    prefix: str
    type: str | None
    granted: float | None
    expires: float | None
    echo: bool = True

    @property
    def key(self) -> tuple[Hashable, str]:
        return (self.owner, self.identifier)


def grant_duration(requested: object, default: float, cap: float) -> float:
    """The duration the router grants for a request of ``requested`` seconds."""
    if not isinstance(requested, (int, float)) or isinstance(requested, bool):
        return min(default, cap)
    if math.isnan(requested) or requested <= 0:
        return min(default, cap)
    return min(float(requested), cap)


class LeaseTable:
    """Every lease of one router, by owner and identifier, with expiry."""

    def __init__(self) -> None:
        self._leases: dict[tuple[Hashable, str], Lease] = {}
        self._by_owner: dict[Hashable, dict[str, Lease]] = {}
        self._deadlines: list[tuple[float, int, Lease]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._leases)

    def __iter__(self):
        return iter(list(self._leases.values()))

    def get(self, owner: Hashable, identifier: str) -> Lease | None:
        return self._leases.get((owner, identifier))

    def of(self, owner: Hashable) -> list[Lease]:
        return list(self._by_owner.get(owner, {}).values())

    def register(
        self,
        owner: Hashable,
        identifier: str,
        prefix: str,
        type: str | None,
        duration: float | None,
        now: float,
        echo: bool = True,
    ) -> tuple[Lease, Lease | None]:
        """Grant (or renew) a lease; returns ``(new, replaced-or-None)``.

        ``duration`` None means "as long as the owner is connected".
        """
        old = self._leases.get((owner, identifier))
        expires = None if duration is None else now + duration
        lease = Lease(owner, identifier, prefix, type, duration, expires, echo)
        self._leases[lease.key] = lease
        self._by_owner.setdefault(owner, {})[identifier] = lease
        if expires is not None:
            heapq.heappush(self._deadlines, (expires, next(self._order), lease))
        return lease, old

    def unregister(self, owner: Hashable, identifier: str) -> Lease | None:
        """Remove one lease; returns it, or None if the owner did not hold it."""
        lease = self._leases.pop((owner, identifier), None)
        if lease is not None:
            held = self._by_owner[owner]
            del held[identifier]
            if not held:
                del self._by_owner[owner]
        return lease

    def drop_owner(self, owner: Hashable) -> list[Lease]:
        """Remove every lease of ``owner`` (it disconnected); returns them."""
        held = self._by_owner.pop(owner, {})
        for identifier in held:
            del self._leases[(owner, identifier)]
        return list(held.values())

    def next_deadline(self) -> float | None:
        """The earliest expiry still pending, or None."""
        heap = self._deadlines
        while heap and not self._current(heap[0][2]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def expire(self, now: float) -> list[Lease]:
        """Remove and return the leases whose deadline is ``<= now``."""
        gone = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, _, lease = heapq.heappop(heap)
            if self._current(lease):
                self.unregister(lease.owner, lease.identifier)
                gone.append(lease)
        return gone

    def _current(self, lease: Lease) -> bool:
        return self._leases.get(lease.key) is lease
