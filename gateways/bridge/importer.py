"""PsEPR -> hub: the callback of the bridge's import leases.

Runs in the PsEPR client's thread (so it must be quick) and hands each
event to the :class:`gateways.bridge.threads.HubWriter`, which publishes it
on the hub unchanged. Not imported, and counted:

- ``echoes``: an event this bridge exported (the router sends a connection
  what it leased, its own events included, when export and import prefixes
  overlap);
- ``duplicates``: an event already imported (two overlapping import leases
  both match it, so the client calls back twice);
- ``control``: the bridges' own control events (resync requests).

The identity of an event is remembered *before* it is queued for the hub,
so when the hub reader sees it under an export prefix it is known as
imported and not sent back (:mod:`gateways.bridge.exporter`).
"""

from __future__ import annotations

from dsmt.event import Event

from gateways.bridge.exporter import RESYNC
from gateways.bridge.recent import RecentIds
from gateways.bridge.threads import HubWriter

COUNTERS = ("imported", "echoes", "duplicates", "control", "import_dropped")


class Importer:
    """Callable for client leases: ``importer(event)`` (client thread)."""

    def __init__(self, writer: HubWriter, exported: RecentIds, imported: RecentIds) -> None:
        self.writer = writer
        self.exported = exported
        self.imported = imported
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)

    def __call__(self, event: Event) -> None:
        if event.type == RESYNC:
            self.counters["control"] += 1
        elif event in self.exported:
            self.counters["echoes"] += 1
        elif event in self.imported:
            self.counters["duplicates"] += 1
        else:
            self.imported.add(event)
            if self.writer.offer(event):
                self.counters["imported"] += 1
            else:
                self.counters["import_dropped"] += 1

    def stats(self) -> dict[str, int]:
        result = dict(self.counters)
        result["import_dropped"] += self.writer.hub_dropped
        return result
