"""What an operator sees of a slice from a PsEPR router: the latest status of every component.

A :class:`SliceView` is a PsEPR client that leases the slice's channels,
asks every bridge to re-send its current state (a *resync*, see
:mod:`gateways.bridge`) and keeps the newest status event of each
(sliver, component). :meth:`SliceView.rows` is the table behind
``dsmt status`` (``{sliver, component, state, since, reason}``) and
:meth:`SliceView.services` the application instances behind ``dsmt up``.

Thread-safety: events arrive in the client's thread; every read method may
be called from any thread and returns a copy.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterable

from dsmt.channels import Layout
from dsmt.event import STATUS, Event

from gateways.bridge import resync_request
from gateways.psepr.client import Client


class SliceView:
    def __init__(self, routers: Iterable[tuple[str, int]], service: str, password: str,
                 layout: Layout, *, instance: str = "dsmt-cli") -> None:
        self.layout = layout
        self._status: dict[tuple[str, str], Event] = {}
        self._lock = threading.RLock()  # re-entrant: a wait() predicate may call status()
        self._changed = threading.Condition(self._lock)
        self.client = Client(list(routers), service, password, instance=instance,
                             reconnect_pause=0.2)
        self.subscription = self.client.lease(layout.base, self._received, type=STATUS)

    def start(self, timeout: float = 10.0) -> SliceView:
        """Connect, wait for the lease, and ask every bridge for its current state."""
        self.client.start()
        if not self.client.wait_connected(timeout):
            raise TimeoutError(f"no router answered within {timeout}s")
        deadline = time.monotonic() + timeout
        granted = threading.Event()
        while self.subscription.state != "granted" and time.monotonic() < deadline:
            granted.wait(0.02)  # the lease state has no notification of its own
        self.client.publish(resync_request(self.client, self.layout.base))
        return self

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SliceView:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _received(self, event: Event) -> None:
        where = self.layout.parse_status(event.channel)
        if where is None or not isinstance(event.payload, dict):
            return
        component, sliver = where
        with self._changed:
            old = self._status.get((sliver, component))
            if old is None or (old.epoch, old.seq) <= (event.epoch, event.seq):
                self._status[(sliver, component)] = event
            self._changed.notify_all()

    def wait(self, predicate, timeout: float | None) -> bool:
        """Block until ``predicate(view)`` holds (re-checked on every event); its result."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def status(self, sliver: str, component: str) -> dict[str, Any] | None:
        """The newest status payload of ``component`` on ``sliver``, or None."""
        with self._lock:
            event = self._status.get((sliver, component))
        return None if event is None else dict(event.payload)

    def rows(self) -> list[dict[str, Any]]:
        """One row per (sliver, component): state, since (wall time), reason."""
        with self._lock:
            items = sorted(self._status.items())
        return [{"sliver": sliver, "component": component,
                 "state": event.payload.get("state"), "since": event.ts,
                 "reason": event.payload.get("reason")}
                for (sliver, component), event in items]

    def services(self) -> list[dict[str, Any]]:
        """The application services per sliver, from each app supervisor's status."""
        with self._lock:
            apps = [(s, e) for (s, c), e in sorted(self._status.items()) if c == "app"]
        found = []
        for sliver, event in apps:
            for name, info in (event.payload.get("services") or {}).items():
                found.append({"sliver": sliver, "service": name, **info})
        return found
