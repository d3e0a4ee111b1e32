"""Heartbeats: what a sliver tells the slice about itself every period.

Every ``heartbeat`` seconds the coordinator publishes, on
``layout.heartbeat(sliver)`` (retained), the record :func:`build` makes::

    {sliver, epoch, plan_version, labels,
     services:    {service: instances running here},
     ready:       {service: of those, instances whose process runs and
                   passes its health check (or runs: no check)},
     assigned:    {service: this sliver's share},
     load:        {"load": 1-minute load average per CPU},
     metrics:     {service: {metric: [value per instance]}},
     scaling:     {service: {replicas, changed, plan}},
     quarantined: reason | None,
     restarts:    share changes so far,
     seq:         beats sent by this coordinator,
     late:        seconds this beat went out after its scheduled time,
     period:      the heartbeat period,
     leaving:     true            (only in the goodbye of a graceful stop)}

Every coordinator reads everyone's into an :class:`actors.world.WorldView`.

**The sending path.** A :class:`Beater` publishes the beats from a thread
of its own, with its own hub publisher (sender ``<component>/heartbeat``),
on a fixed schedule (``start + n * period``). Nothing else runs in that
thread, so a coordinator busy with an install, a slow mailbox or a long
placement never delays a beat; only CPU starvation does, and that is
measured: each beat carries ``late`` (actual vs scheduled send time), a
beat more than a period late skips the missed slots instead of bursting,
and :meth:`Beater.stats` keeps the count, the last and the worst lateness.
The coordinator hands it the record's content (:meth:`Beater.set_content`,
a reference swap, so neither thread waits on the other); the beater adds
``seq``, ``late``, ``period``, ``load`` and the metric sampler's values at
send time, then calls ``on_sent(late)`` (the coordinator's tick: it only
``tell()``s the actor a :class:`Tick`). :meth:`Beater.stop` publishes the goodbye
(``leaving: true``) from the same thread and closes the publisher there.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Iterable, Mapping

from dsmt.clock import Clock
from dsmt.event import HEARTBEAT, Address

log = logging.getLogger(__name__)


def build(*, sliver: str, epoch: str, plan_version: int, labels: Iterable[str],
          services: Mapping[str, int], ready: Mapping[str, int], assigned: Mapping[str, int],
          metrics: Mapping[str, Any], scaling: Mapping[str, Any], quarantined: str | None,
          restarts: int, leaving: bool = False) -> dict[str, Any]:
    """The heartbeat record (see the module docstring)."""
    beat = {"sliver": sliver, "epoch": epoch, "plan_version": plan_version,
            "labels": list(labels), "services": dict(services), "ready": dict(ready),
            "assigned": dict(assigned),
            "load": {"load": load()}, "metrics": dict(metrics), "scaling": dict(scaling),
            "quarantined": quarantined, "restarts": restarts}
    if leaving:
        beat["leaving"] = True
    return beat


def load() -> float | None:
    """This machine's 1-minute load average per CPU, or None where it is not known."""
    try:
        return round(os.getloadavg()[0] / (os.cpu_count() or 1), 3)
    except OSError:
        return None


class Tick:
    """The beater sent a beat ``late`` seconds after its schedule, at monotonic ``at``."""

    __slots__ = ("late", "at")

    def __init__(self, late: float, at: float) -> None:
        self.late = late
        self.at = at


class Beater:
    """Publishes ``channel`` every ``period`` seconds from its own thread (see the module doc)."""

    def __init__(self, period: float, channel: str, clock: Clock, *,
                 publishers: Callable[[Address], Any] | None, sender: Address,
                 on_sent: Callable[[float], None], metrics: Callable[[], Any] | None = None,
                 name: str = "heartbeat") -> None:
        self.period = period
        self.channel = channel
        self.clock = clock
        self.publishers = publishers
        self.sender = sender
        self.on_sent = on_sent
        self.metrics = metrics
        self.name = name
        self._content: dict[str, Any] = {}
        self._goodbye: dict[str, Any] | None = None
        self._wake = threading.Event()
        self._poke = False
        self._stopping = False
        self._lock = threading.Lock()
        self._stats = {"sent": 0, "late_last": 0.0, "late_max": 0.0, "skipped": 0, "failed": 0}
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)

    def set_content(self, content: dict[str, Any]) -> None:
        """What the next beats say (any thread; the beater copies it at send time)."""
        self._content = content

    def start(self) -> Beater:
        self._thread.start()
        return self

    def poke(self) -> None:
        """Send a beat now (off schedule, e.g. on quarantine); the schedule is kept."""
        self._poke = True
        self._wake.set()

    def stop(self, goodbye: dict[str, Any] | None = None, timeout: float = 2.0) -> None:
        """Stop beating; publish ``goodbye`` (if given) as the last beat, from the thread."""
        self._goodbye = goodbye
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {k: round(v, 3) if isinstance(v, float) else v for k, v in self._stats.items()}

    def _run(self) -> None:
        publisher = None
        try:
            if self.publishers is not None:
                publisher = self.publishers(self.sender)
            due = self.clock.monotonic()
            while not self._stopping:
                now = self.clock.monotonic()
                if now >= due or self._poke:
                    late = max(0.0, now - due) if now >= due else 0.0
                    self._poke = False
                    self._send(publisher, late)
                    if now >= due:
                        due += self.period
                        if due <= self.clock.monotonic():  # starved: skip, do not burst
                            missed = int((self.clock.monotonic() - due) // self.period) + 1
                            due += missed * self.period
                            with self._lock:
                                self._stats["skipped"] += missed
                self._wake.wait(max(0.0, due - self.clock.monotonic()))
                self._wake.clear()
            if self._goodbye is not None and publisher is not None:
                publisher.publish(self.channel, HEARTBEAT, {**self._goodbye, "leaving": True},
                                  retain=True)
        except Exception:  # the thread's boundary: say why the beats stopped
            log.exception("%s: heartbeats stopped", self.name)
        finally:
            if publisher is not None:
                publisher.close()

    def _send(self, publisher: Any, late: float) -> None:
        with self._lock:
            seq = self._stats["sent"] + 1
        beat = {**self._content, "seq": seq, "late": round(late, 3), "period": self.period,
                "load": {"load": load()}}
        if self.metrics is not None:
            beat["metrics"] = self.metrics()
        try:
            if publisher is not None:
                publisher.publish(self.channel, HEARTBEAT, beat, retain=True)
        except Exception:
            with self._lock:
                self._stats["failed"] += 1
            log.exception("%s: a heartbeat could not be published", self.name)
        with self._lock:
            self._stats["sent"] = seq
            self._stats["late_last"] = late
            self._stats["late_max"] = max(self._stats["late_max"], late)
        self.on_sent(late)
