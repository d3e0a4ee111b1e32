"""The routing index: which lease holders receive an event.

An event on channel ``/a/b/c/`` goes to every lease on ``/``, ``/a/``,
``/a/b/`` and ``/a/b/c/`` (whole-element prefix match, DESIGN.md §3.1), so
:meth:`RouteIndex.match` does one dict lookup per element instead of
scanning all leases. A lease restricted to a payload namespace (``type``)
only matches events of that type. An event addressed ``to`` a service (and
instance) only reaches connections logged in as that service (and
instance); peer links are never narrowed this way, because the addressee
may sit behind them.

Each holder receives an event at most once, however many of its leases
match. The event's own publisher (``source``) receives it only through a
lease that did not ask for no echo (``echo=False``, a DSMT addition to the
lease payload, like NATS's ``no_echo``: a bridge that both exports and
imports a prefix would otherwise be sent each of its own events back, to
parse and drop). Not thread-safe: the router's event loop owns it.
"""

from __future__ import annotations

from typing import Protocol

from dsmt import channels
from dsmt.event import Address

from gateways.psepr.leases import Lease

_PREFIX_CACHE = 4096


class Holder(Protocol):
    """What the index needs to know about a lease owner."""

    address: Address | None
    is_peer: bool


class RouteIndex:
    def __init__(self) -> None:
        self._by_prefix: dict[str, dict[int, Lease]] = {}
        self._prefixes: dict[str, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._by_prefix.values())

    def add(self, lease: Lease) -> None:
        self._by_prefix.setdefault(lease.prefix, {})[id(lease)] = lease

    def remove(self, lease: Lease) -> None:
        bucket = self._by_prefix.get(lease.prefix)
        if bucket is not None and bucket.pop(id(lease), None) is not None and not bucket:
            del self._by_prefix[lease.prefix]

    def match(self, channel: str, type: str, to: Address | None = None,
              source: Holder | None = None) -> list[Holder]:
        """The distinct holders that receive an event of ``type`` on ``channel`` from ``source``."""
        found: dict[int, Holder] = {}
        by_prefix = self._by_prefix
        for prefix in self.prefixes(channel):
            bucket = by_prefix.get(prefix)
            if bucket is None:
                continue
            for lease in bucket.values():
                if lease.type is not None and lease.type != type:
                    continue
                owner = lease.owner
                if owner is source and not lease.echo:
                    continue
                if to is not None and not owner.is_peer and not _addressed(owner.address, to):
                    continue
                found[id(owner)] = owner
        return list(found.values())

    def prefixes(self, channel: str) -> tuple[str, ...]:
        """``/`` and every whole-element prefix of ``channel``, shortest first."""
        cached = self._prefixes.get(channel)
        if cached is None:
            parts = channels.elements(channel)
            cached = (channels.EVERYTHING,) + tuple(
                "/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts)))
            if len(self._prefixes) >= _PREFIX_CACHE:
                self._prefixes.clear()
            self._prefixes[channel] = cached
        return cached


def _addressed(address: Address | None, to: Address) -> bool:
    if address is None or address.service != to.service:
        return False
    return to.instance is None or address.instance == to.instance
