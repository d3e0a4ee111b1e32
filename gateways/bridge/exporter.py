"""Hub -> PsEPR: what the bridge sends to the router, and when.

The :class:`Exporter` is called from three threads and guards its
:class:`gateways.bridge.outbox.Outbox` with one lock:

- the hub reader (:meth:`Exporter.export`), for every event under an export
  prefix;
- the client thread, on (re)connection (:meth:`Exporter.connected`: send the
  queue and the whole current state), on disconnection, and on a resync
  request (:meth:`Exporter.resync`).

Holding the lock while handing events to the client keeps their order: what
was buffered goes out before anything exported after the connection.

What is not exported, and why (each counted):

- ``loops``: an event the bridge itself imported and published on the hub
  (it came from PsEPR; sending it back would loop);
- ``foreign``: an event of the hub's retained snapshot taken when the bridge
  starts whose sender is not of this sliver. The snapshot may hold events a
  previous incarnation of the bridge imported (retained on the hub), and
  this incarnation no longer remembers their ids; re-sending an old value
  could overwrite a newer one elsewhere. Live events from any sender are
  exported;
- ``unexportable``: an event the PsEPR XML codec refuses or that does not fit
  in a stanza (logged at warning level with the reason); the bridge goes on.

Each exported event is encoded to XML once here, to refuse it early and to
size it for the buffer bound, and once more by the client to send it (the
client takes events, not stanzas).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from dsmt import channels
from dsmt.errors import ChannelError, DsmtError
from dsmt.event import Event

from gateways.bridge.outbox import Outbox
from gateways.bridge.recent import RecentIds
from gateways.psepr import xml

log = logging.getLogger(__name__)

RESYNC = "http://dsmt.org/xs/payload/resync"
RESYNC_CHANNEL = channels.join("org", "dsmt", "bridge", "resync")
CONTROL_PREFIX = channels.join("org", "dsmt", "bridge", "control")
STANZA_OVERHEAD = 512  # the <message> and <x> around an event, with a long router name

COUNTERS = ("exported", "loops", "foreign", "unexportable", "resyncs", "bad_resyncs")


class Exporter:
    """Sends hub events to the router now, or buffers them (see the module docstring)."""

    def __init__(self, client: Any, outbox: Outbox, exported: RecentIds, imported: RecentIds,
                 local_instance: str, max_stanza: int,
                 on_loss: Callable[[], Any] = lambda: None) -> None:
        self.client = client
        self.outbox = outbox
        self.exported = exported
        self.imported = imported
        self.local_instance = local_instance
        self.max_event = max_stanza - STANZA_OVERHEAD
        self.on_loss = on_loss
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.last_problem = ""
        self._lock = threading.Lock()

    # -- hub reader thread ------------------------------------------------------

    def export(self, event: Event, from_snapshot: bool = False) -> None:
        """Send ``event`` to the router, or keep it for the next connection."""
        if event.channel.startswith(CONTROL_PREFIX):
            return
        if event in self.imported:
            self.counters["loops"] += 1
            return
        if from_snapshot and event.sender.instance != self.local_instance:
            self.counters["foreign"] += 1
            return
        try:
            size = len(xml.event_to_bytes(event, self.max_event))
        except DsmtError as exc:
            self.counters["unexportable"] += 1
            self.last_problem = f"event {event.id} on {event.channel} not exported: {exc}"[:300]
            log.warning("bridge: %s", self.last_problem)
            return
        self.exported.add(event)
        outbox = self.outbox
        with self._lock:
            losses = outbox.counters["dropped"] + outbox.counters["lost"]
            if outbox.add(event, size):
                self._send(event)
            lost_now = outbox.counters["dropped"] + outbox.counters["lost"] - losses
        if lost_now:
            self.on_loss()

    # -- client thread ----------------------------------------------------------

    def connected(self) -> int:
        """Connected (again): send the queue and the current state; returns how many."""
        with self._lock:
            events = self.outbox.connect()
            for event in events:
                self._send(event)
        return len(events)

    def disconnected(self) -> None:
        with self._lock:
            self.outbox.disconnect()

    def resync(self, request: Event) -> None:
        """Answer a resync request: re-send the current state under its ``prefix``."""
        payload = request.payload
        try:
            prefix = channels.validate_subscription(
                payload.get("prefix") if isinstance(payload, dict) else None)
        except ChannelError:
            self.counters["bad_resyncs"] += 1
            return
        with self._lock:
            if not self.outbox.connected:
                return  # the state goes out in full on the next connection anyway
            for event in self.outbox.select(prefix):
                self._send(event)
            self.counters["resyncs"] += 1

    # -- any thread -------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """The export counters, the outbox counters, and the buffered/key gauges."""
        with self._lock:
            result = dict(self.counters)
            result.update(self.outbox.counters)
            result.update(buffered=self.outbox.buffered, state_keys=self.outbox.keys,
                          buffer_bytes=self.outbox.bytes)
        return result

    def _send(self, event: Event) -> None:
        self.client.publish(event)
        self.counters["exported"] += 1
