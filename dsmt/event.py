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

Why :class:`Event` is a ``typing.NamedTuple`` and not a frozen dataclass:
every event is built once by its sender and once by every reader, and a
frozen dataclass's ``__init__`` goes through ``object.__setattr__`` per
field (measured: 1.6 us of the 3.1 us ``Sequencer.make`` took; a tuple is
built in one C call). It stays an immutable value with named fields,
keyword construction, ``==`` and ``key``; ``event._replace(seq=2)`` and
``Event._fields`` replace ``dataclasses.replace`` and ``fields``. Being a
tuple, an event is ``isinstance(x, tuple)``: code that mixes events and
plain tuples in one queue must test ``isinstance(x, Event)``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple

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


class Event(NamedTuple):
    """One event; see the module docstring for the meaning of each field."""

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


_new_event = tuple.__new__
_now = time.time


@dataclass(slots=True)
class Sequencer:
    """Stamps events of one sender with its epoch and a strictly rising seq.

    Thread-safe without a lock: ``next()`` on an ``itertools.count`` is one
    C call that never releases the GIL, so two threads never get the same
    seq (the rest of :meth:`make` only reads). One per sender. A new
    Sequencer (a restarted sender) gets a new, greater epoch.
    """

    sender: Address
    epoch: int = field(default_factory=lambda: time.time_ns() // 1000)
    _counter: Any = field(default_factory=lambda: itertools.count(1), repr=False)
    _id_prefix: str = field(init=False, repr=False, default="")

    def __post_init__(self) -> None:
        self._id_prefix = f"{self.epoch:x}."

    def parts(self) -> tuple[Address, int, Iterator[int], str]:
        """``(sender, epoch, seq counter, id prefix)``: what :func:`dsmt.codec.stamper` uses."""
        return self.sender, self.epoch, self._counter, self._id_prefix

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
        seq = next(self._counter)
        # Event(...) with its fields in declaration order, without the
        # keyword-argument machinery of the generated __new__.
        return _new_event(Event, (channel, type, self.sender, payload,
                                  f"{self._id_prefix}{seq}", seq, self.epoch, _now(),
                                  retain, to))
