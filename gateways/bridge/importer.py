"""PsEPR -> hub: the callback of the bridge's import leases, publishing in the client's thread.

Runs in the PsEPR client's thread and publishes each event on the hub
itself, unchanged (bus ``Publisher.send``: sender, id and seq kept), so an
imported event wakes no other thread of the bridge on its way in. The
publisher belongs to that thread (pyzmq's rule): it is opened at the first
import and closed by :meth:`Importer.close`, which the bridge calls when the
client reports ``closed`` (the last thing the client's thread does).

Nothing here may block the client's event loop: the publisher's send
timeout is 0, so when the hub's queue for it is full (:data:`dsmt.hub.HWM`
events: the hub is stuck) the event is dropped and counted at once, and the
hub's subscribers see the seq gap. Opening the publisher waits for the hub's
handshake (a local socket: a millisecond), once.

Not imported, and counted:

- ``echoes``: an event this bridge exported (a router sends a connection
  what it leased, its own events included, when export and import prefixes
  overlap; the bridge's import leases ask for no echo, so only a router
  that does not know that option sends them);
- ``duplicates``: an event already imported (two overlapping import leases
  both match it, so the client calls back twice);
- ``control``: the bridges' own control events (resync requests);
- ``import_dropped``: the hub did not take it (full queue, see above).

The identity of an event is remembered *before* it is published, so when
the hub reader sees it under an export prefix it is known as imported and
not sent back (:mod:`gateways.bridge.exporter`). If the hub cannot be
reached at all (the publisher cannot open, or the socket is gone),
``on_fatal(exc)`` is called once, so the bridge fails and is restarted.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import zmq

from dsmt.bus import Bus, Publisher
from dsmt.event import Address, Event

from gateways.bridge.exporter import RESYNC
from gateways.bridge.recent import RecentIds

log = logging.getLogger(__name__)

COUNTERS = ("imported", "echoes", "duplicates", "control", "import_dropped", "import_errors")


class Importer:
    """Callable for client leases: ``importer(event)`` (client thread)."""

    def __init__(self, bus: Bus, sender: Address, exported: RecentIds, imported: RecentIds,
                 on_fatal: Callable[[BaseException], Any]) -> None:
        self.bus = bus
        self.sender = sender
        self.exported = exported
        self.imported = imported
        self.on_fatal = on_fatal
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._publisher: Publisher | None = None
        self._broken = False  # the hub is unreachable: on_fatal was called

    def __call__(self, event: Event) -> None:
        counters = self.counters
        if event.type == RESYNC:
            counters["control"] += 1
        elif event in self.exported:
            counters["echoes"] += 1
        elif event in self.imported:
            counters["duplicates"] += 1
        else:
            self.imported.add(event)
            self._publish(event)

    def close(self) -> None:
        """Close the publisher (the client's thread, which opened it); idempotent."""
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close()

    def stats(self) -> dict[str, int]:
        return dict(self.counters)

    def _publish(self, event: Event) -> None:
        counters = self.counters
        try:
            publisher = self._publisher
            if publisher is None:
                if self._broken:
                    counters["import_dropped"] += 1
                    return
                publisher = self._publisher = self.bus.publisher(self.sender, send_timeout=0.0)
            dropped = publisher.dropped
            publisher.send(event)
        except (zmq.ZMQError, TimeoutError) as exc:  # the hub or its socket is gone
            counters["import_dropped"] += 1
            if not self._broken:
                self._broken = True
                log.error("bridge importer %s: cannot publish on the hub: %s", self.sender, exc)
                self.close()
                self.on_fatal(exc)
            return
        except Exception:  # one bad event must not stop the imports
            counters["import_errors"] += 1
            log.exception("bridge importer %s: cannot publish event %s on the hub",
                          self.sender, event.id)
            return
        if publisher.dropped != dropped:
            counters["import_dropped"] += 1
        else:
            counters["imported"] += 1
