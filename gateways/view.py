"""What an operator sees of a slice from a PsEPR router: the latest status of every component.

A :class:`SliceView` is a PsEPR client that leases the slice's channels,
asks every bridge to re-send its current state (a *resync*, see
:mod:`gateways.bridge`) and keeps the newest status event of each
(sliver, component). :meth:`SliceView.rows` is the table behind
``dsmt status`` (``{sliver, component, state, since, reason}``; a state an
original DSMT sliver spells ``initialized`` or ``initalized`` is shown as
``initiated``) and
:meth:`SliceView.services` the application instances behind ``dsmt up``.

**Liveness** (:meth:`SliceView.slivers`): the view also leases the
coordinators' heartbeats and judges every sliver it has heard of:

=========  =============================================================
state      when
=========  =============================================================
alive      its newest beat is younger than ``k`` of its periods (k = 3)
suspected  no beat for ``k`` periods (its heartbeats stopped, or are late)
dead       it said it is leaving; or no beat for ``k`` periods plus
           :data:`DEAD_AFTER`; or a live coordinator says it is dead
=========  =============================================================

A beat's age is the view's wall time minus the beat's ``ts``. The peers'
verdicts come from the coordinators' status (``suspected``/``dead``
lists), so a view started after a sliver died (whose bridge can no longer
answer the resync) still names it. :meth:`SliceView.rows` adds a row per
sliver with component ``heartbeat`` when asked (state = liveness, ``since`` = its last
beat's time, ``reason`` = why), in the schema of the other rows.

**Resources**: the view also keeps every sliver's newest resource report
(the container manager's retained :data:`dsmt.event.RESOURCES` event on
``layout.resources(sliver)``: cpu and rss of the node and of each
application process, every 10 s on a node); :meth:`SliceView.resources`.

Thread-safety: events arrive in the client's thread; every read method may
be called from any thread and returns a copy.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterable

from dsmt.channels import Layout
from dsmt.errors import ChannelError
from dsmt.event import HEARTBEAT, RESOURCES, STATUS, Event
from dsmt.states import COMPONENT

from gateways.bridge import resync_request
from gateways.psepr.client import Client


SUSPECT_AFTER = 3       # missed beats (the node default)
DEAD_AFTER = 10.0       # further seconds of silence (the node default)
ALIVE, SUSPECTED, DEAD = "alive", "suspected", "dead"
HEARTBEAT_COMPONENT = "heartbeat"


class SliceView:
    def __init__(self, routers: Iterable[tuple[str, int]], service: str, password: str,
                 layout: Layout, *, instance: str = "dsmt-cli") -> None:
        self.layout = layout
        self._status: dict[tuple[str, str], Event] = {}
        self._beats: dict[str, Event] = {}
        self._resources: dict[str, Event] = {}
        self._lock = threading.RLock()  # re-entrant: a wait() predicate may call status()
        self._changed = threading.Condition(self._lock)
        self.client = Client(list(routers), service, password, instance=instance,
                             reconnect_pause=0.2)
        self.subscription = self.client.lease(layout.base, self._received, type=STATUS)
        self.beats = self.client.lease(layout.heartbeat(), self._beat, type=HEARTBEAT)
        self.reports = self.client.lease(layout.heartbeat(), self._report, type=RESOURCES)

    def start(self, timeout: float = 10.0) -> SliceView:
        """Connect, wait for the lease, and ask every bridge for its current state."""
        self.client.start()
        if not self.client.wait_connected(timeout):
            raise TimeoutError(f"no router answered within {timeout}s")
        self.subscription.wait_granted(timeout)
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

    def _beat(self, event: Event) -> None:
        sliver = self.layout.parse_heartbeat(event.channel)
        if sliver is None or not isinstance(event.payload, dict):
            return
        self._keep_newest(self._beats, sliver, event)

    def _report(self, event: Event) -> None:
        payload = event.payload
        sliver = payload.get("sliver") if isinstance(payload, dict) else None
        if not isinstance(sliver, str) or event.channel != _resources_channel(self.layout, sliver):
            return
        self._keep_newest(self._resources, sliver, event)

    def _keep_newest(self, events: dict[str, Event], sliver: str, event: Event) -> None:
        """``event`` as the sliver's entry unless an entry with a later ``ts`` is there."""
        with self._changed:
            old = events.get(sliver)
            if old is None or old.ts <= event.ts:
                events[sliver] = event
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

    def resources(self, sliver: str) -> dict[str, Any] | None:
        """The newest resource report of ``sliver`` (its payload), or None."""
        with self._lock:
            event = self._resources.get(sliver)
        return None if event is None else dict(event.payload)

    def beat(self, sliver: str) -> dict[str, Any] | None:
        """The newest heartbeat payload of ``sliver``, or None."""
        with self._lock:
            event = self._beats.get(sliver)
        return None if event is None else dict(event.payload)

    def rows(self, heartbeats: bool = False) -> list[dict[str, Any]]:
        """One row per (sliver, component): state, since (wall time), reason, ready.

        ``ready`` is what a service instance's status says (running and passing
        its health check, see :mod:`actors.process.machine`), None for other
        components.

        With ``heartbeats``, also one ``heartbeat`` row per sliver the view
        judged (see :meth:`slivers`), as ``dsmt status`` shows them.
        """
        with self._lock:
            items = sorted(self._status.items())
        rows = [{"sliver": sliver, "component": component,
                 "state": _canonical(event.payload.get("state")), "since": event.ts,
                 "reason": event.payload.get("reason"), "ready": event.payload.get("ready")}
                for (sliver, component), event in items]
        if not heartbeats:
            return rows
        rows += [{"sliver": name, "component": HEARTBEAT_COMPONENT, "state": s["state"],
                  "since": s["last_beat"], "reason": s["reason"], "ready": None}
                 for name, s in ((s["sliver"], s) for s in self.slivers())]
        return sorted(rows, key=lambda r: (r["sliver"], r["component"]))

    def slivers(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every sliver heard of (beats, statuses, peers' verdicts) and its liveness.

        ``{sliver, state, last_beat (wall time or None), age (s or None),
        reason, dead_for (peers that say it is dead)}``, ordered by name.
        """
        now = time.time() if now is None else now
        with self._lock:
            beats = dict(self._beats)
            names = {s for s, _ in self._status} | set(beats)
            coordinators = {s: e.payload for (s, c), e in self._status.items()
                            if c == "coordinator"}
        out = {}
        for name in sorted(names):
            beat = beats.get(name)
            out[name] = self._judge(name, beat, now)
        for name, judged in list(out.items()):  # its own view of itself does not count
            if judged["state"] == ALIVE and name in coordinators:
                for peer in coordinators[name].get("dead") or ():
                    if isinstance(peer, str):
                        out.setdefault(peer, self._judge(peer, None, now))["dead_for"].append(name)
        for name, judged in out.items():
            if judged["dead_for"] and judged["state"] != DEAD and (
                    judged["age"] is None or judged["age"] >= judged["period"]):
                judged["state"] = DEAD
                judged["reason"] = f"dead according to {', '.join(sorted(judged['dead_for']))}"
        return [{k: v for k, v in j.items() if k != "period"} for _, j in sorted(out.items())]

    @staticmethod
    def _judge(name: str, beat: Event | None, now: float) -> dict[str, Any]:
        if beat is None:
            return {"sliver": name, "state": None, "last_beat": None, "age": None,
                    "reason": "no heartbeat seen", "dead_for": [], "period": 1.0}
        period = beat.payload.get("period")
        period = float(period) if isinstance(period, (int, float)) and period > 0 else 1.0
        age = max(0.0, now - beat.ts)
        suspect = SUSPECT_AFTER * period
        if beat.payload.get("leaving"):
            state, reason = DEAD, "left the slice (graceful stop)"
        elif age < suspect:
            state, reason = ALIVE, None
        elif age < suspect + DEAD_AFTER:
            state, reason = SUSPECTED, f"no heartbeat for {age:.1f}s"
        else:
            state, reason = DEAD, f"no heartbeat for {age:.1f}s"
        return {"sliver": name, "state": state, "last_beat": beat.ts, "age": round(age, 3),
                "reason": reason, "dead_for": [], "period": period}

    def services(self) -> list[dict[str, Any]]:
        """The application services per sliver, from each app supervisor's status."""
        with self._lock:
            apps = [(s, e) for (s, c), e in sorted(self._status.items()) if c == "app"]
        found = []
        for sliver, event in apps:
            for name, info in (event.payload.get("services") or {}).items():
                found.append({"sliver": sliver, "service": name, **info})
        return found


def _resources_channel(layout: Layout, sliver: str) -> str | None:
    try:
        return layout.resources(sliver)
    except ChannelError:  # not a sliver name a channel can hold: not a report of ours
        return None


def _canonical(state: Any) -> Any:
    """A state as DSMT names it: the original DSMT's ``initialized``/``initalized``
    (DESIGN.md §5) are ``initiated``; anything else as it came."""
    return COMPONENT.aliases.get(state, state) if isinstance(state, str) else state
