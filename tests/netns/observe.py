"""What a chaos run watches: instances in the process table, and the slice's events on PsEPR.

- :class:`Sampler` counts the slice's application processes every
  :data:`SAMPLE` seconds (a thread) and keeps ``(time, per-sliver count)``;
  it integrates the overshoot (time with more than the target running).
- :class:`Watcher` is a PsEPR client of a router, living in the router's
  namespace, leasing everything under the slice: every event goes through a
  :class:`dsmt.gaps.GapDetector`; it keeps the newest status event of each
  channel and the newest heartbeat of each sliver, and publishes resync
  requests (:func:`gateways.bridge.resync_request`).
- :func:`truth` reads a sliver's own retained status events from its hub's
  snapshot (over the hub's ipc socket, which no namespace hides): what a
  subscriber should have seen last on each of those channels.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import zmq

from dsmt.bus import Bus
from dsmt.channels import Layout
from dsmt.event import Event
from dsmt.gaps import Gap, GapDetector
from dsmt.hub import Endpoints
from gateways.bridge import resync_request
from gateways.psepr.client import Client

from actors.localslice import SERVICE

SAMPLE = 0.2


class Sampler:
    """Counts instances per sliver every :data:`SAMPLE` s; see the module docstring."""

    def __init__(self, slice_: Any, target: int) -> None:
        self.slice = slice_
        self.target = target
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.overshoot_max = 0
        self.overshoot_seconds = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        last = None
        while not self._stop.is_set():
            counts = {name: len(found) for name, found in self.slice.instances().items()}
            now = time.monotonic()
            total = sum(counts.values())
            with self._lock:
                self.samples.append((now, counts))
                if last is not None and last[1] > self.target:
                    self.overshoot_seconds += now - last[0]
                self.overshoot_max = max(self.overshoot_max, total - self.target)
            last = (now, total)
            self._stop.wait(SAMPLE)

    def latest(self) -> tuple[float, dict[str, int]] | None:
        with self._lock:
            return self.samples[-1] if self.samples else None

    def settled(self, since: float, hold: float) -> float | None:
        """When the count became exactly the target for good, if it has held ``hold`` s.

        Only samples taken after ``since`` count; the result is the time of the
        first sample of the final run at the target (None: not settled).
        """
        with self._lock:
            recent = [(t, sum(c.values())) for t, c in self.samples if t > since]
        if not recent or recent[-1][1] != self.target:
            return None
        start = len(recent) - 1
        while start > 0 and recent[start - 1][1] == self.target:
            start -= 1
        return recent[start][0] if recent[-1][0] - recent[start][0] >= hold else None


class Watcher:
    """A subscriber to the whole slice on one router; see the module docstring."""

    def __init__(self, slice_: Any, router: str = "r1") -> None:
        self.layout: Layout = slice_.layout
        self.detector = GapDetector()
        self.status: dict[str, Event] = {}
        self.beats: dict[str, Event] = {}
        self.pending: list[Gap] = []
        self.resynced = 0
        self.requests = 0
        self.reconnected = threading.Event()  # set at each (re)connection: resync due
        self._lock = threading.Lock()
        network = slice_.network
        self.client = network.call(router, self._connect, slice_.address, slice_.password)
        self.subscription = self.client.lease(self.layout.base, self._received)

    def _connect(self, address: tuple[str, int], password: str) -> Client:
        # started in the router's namespace: the client's thread and sockets stay there
        return Client([address], SERVICE, password, instance="chaos-watcher",
                      reconnect_pause=0.1, on_state=self._state).start()

    def _state(self, state: str) -> None:
        self.reconnected.set()

    def _received(self, event: Event) -> None:
        with self._lock:
            report = self.detector.observe(event)
            if isinstance(report, Gap):
                self.pending.append(report)
            if self.layout.parse_status(event.channel) is not None:
                old = self.status.get(event.channel)
                if old is None or _newer(event, old):
                    self.status[event.channel] = event
            sliver = self.layout.parse_heartbeat(event.channel)
            if sliver is not None and isinstance(event.payload, dict):
                old = self.beats.get(sliver)
                if old is None or _newer(event, old):
                    self.beats[sliver] = event

    def granted(self) -> bool:
        return self.subscription.state == "granted"

    def resync(self) -> None:
        """Ask every bridge to re-send its current state under the slice."""
        self.requests += 1
        self.client.publish(resync_request(self.client, self.layout.base))

    def gaps(self) -> list[Gap]:
        with self._lock:
            return list(self.pending)

    def resolve(self, gaps: list[Gap]) -> None:
        """``gaps`` are re-synced: the view matched the slivers' hubs after a resync."""
        with self._lock:
            for gap in gaps:
                if gap in self.pending:
                    self.pending.remove(gap)
                    self.resynced += 1

    def seen(self, channel: str) -> str | None:
        with self._lock:
            event = self.status.get(channel)
        return None if event is None else event.id

    def payload(self, channel: str) -> dict[str, Any]:
        """The payload of the newest status event on ``channel`` ({} if none)."""
        with self._lock:
            event = self.status.get(channel)
        return event.payload if event is not None and isinstance(event.payload, dict) else {}

    def beat(self, sliver: str) -> dict[str, Any] | None:
        with self._lock:
            event = self.beats.get(sliver)
        return None if event is None else event.payload

    def close(self) -> None:
        self.client.close()


def _newer(event: Event, old: Event) -> bool:
    """``event`` comes after ``old`` (a resync re-sends old events: keep the newest)."""
    if event.sender != old.sender:
        return True
    return (event.epoch, event.seq) >= (old.epoch, old.seq)


def truth(slice_: Any, sliver: str, context: zmq.Context) -> dict[str, str]:
    """``{status channel: event id}`` of the sliver's own components, from its hub."""
    run = slice_.member(sliver).run_dir
    endpoints = Endpoints.ipc(run)
    layout = slice_.layout
    subscriber = Bus(context, endpoints, connect_timeout=3.0).subscriber(layout.base,
                                                                          snapshot=True)
    try:
        events = subscriber.snapshot.events if subscriber.snapshot else ()
    finally:
        subscriber.close()
    own = {}
    for event in events:
        parsed = layout.parse_status(event.channel)
        if parsed is not None and parsed[1] == sliver and event.payload is not None:
            own[event.channel] = event.id
    return own
