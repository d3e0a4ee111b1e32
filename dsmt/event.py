"""The DSMT event: what every actor publishes and every wire carries.

An event has a ``channel`` (PsEPR channel), a ``type`` (payload namespace
URI), a ``sender`` address (service, instance), an optional ``to`` address,
a ``payload`` and DSMT metadata:

- ``id``: unique; ``"{epoch:x}.{seq}"`` for events made by a :class:`Sequencer`;
- ``seq``: per sender, strictly increasing within one ``epoch``;
- ``epoch``: changes (grows) when a sender restarts: microseconds since the
  UNIX epoch at the sender's start, so a newer epoch compares greater;
- ``ts``: UNIX seconds (float) when the event was made;
- ``retain``: keep as the latest value of its key (its channel).

Encoding lives in :mod:`dsmt.codec` (msgpack) and ``gateways.psepr.xml``
(PsEPR XML); this module has no wire knowledge.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# Payload namespaces (event types).
ATTRIBUTE = "http://psepr.org/xs/payload/attribute"
LEASE = "http://psepr.org/xs/payload/lease"
RECORD = "http://dsmt.org/xs/payload/record"
STATUS = "http://dsmt.org/xs/payload/status"
HEARTBEAT = "http://dsmt.org/xs/payload/heartbeat"
COMMAND = "http://dsmt.org/xs/payload/command"
RESOURCES = "http://dsmt.org/xs/payload/resources"


@dataclass(frozen=True, slots=True)
class Address:
    """A PsEPR endpoint: a service name and optionally one of its instances."""

    service: str
    instance: str | None = None

    def __str__(self) -> str:
        return self.service if self.instance is None else f"{self.service}/{self.instance}"


@dataclass(frozen=True, slots=True)
class Event:
    channel: str
    type: str
    sender: Address
    payload: Any
    id: str
    seq: int
    epoch: int
    ts: float
    retain: bool = False
    to: Address | None = None

    @property
    def key(self) -> str:
        """The key under which a retained event is the latest value."""
        return self.channel


@dataclass(slots=True)
class Sequencer:
    """Stamps events of one sender with its epoch and a strictly rising seq.

    Thread-safe; one per sender. A new Sequencer (a restarted sender) gets a
    new, greater epoch.
    """

    sender: Address
    epoch: int = field(default_factory=lambda: time.time_ns() // 1000)
    _counter: Any = field(default_factory=lambda: itertools.count(1), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def make(
        self,
        channel: str,
        type: str,
        payload: Any,
        *,
        retain: bool = False,
        to: Address | None = None,
    ) -> Event:
        """A new event from this sender; the channel is not validated here."""
        with self._lock:
            seq = next(self._counter)
        return Event(
            channel=channel,
            type=type,
            sender=self.sender,
            payload=payload,
            id=f"{self.epoch:x}.{seq}",
            seq=seq,
            epoch=self.epoch,
            ts=time.time(),
            retain=retain,
            to=to,
        )
