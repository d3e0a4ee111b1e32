"""What every actor of a node is given: names, clock, publishers, registry.

A :class:`Context` is immutable and shared by all actors of one node. The
only seams to the outside world an actor uses are here: the clock (real or
:class:`dsmt.testing.FakeClock`) and the publisher factory (the hub bus in a
node, :class:`dsmt.testing.RecordingPublishers` in tests, or None to publish
nothing).

Threading contract of a :class:`Publisher`: it is used only by the thread
that created it (the real one owns a ZeroMQ socket). An actor therefore
creates its publisher in its own thread before ``on_start`` and closes it in
the same thread after its last hook; :class:`dsmt.actor.Actor` does both.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any, Protocol

from dsmt.channels import Layout
from dsmt.clock import Clock, system_clock
from dsmt.event import Address, Event
from dsmt.registry import Registry


class Publisher(Protocol):
    """Publishes events of one sender; owned by the thread that created it."""

    def publish(
        self,
        channel: str,
        type: str,
        payload: Any,
        *,
        retain: bool = False,
        to: Address | None = None,
    ) -> Event:
        """Stamp and send one event; returns the event as sent."""
        ...

    def close(self) -> None:
        """Release the publisher (its socket); idempotent."""
        ...


class PublisherFactory(Protocol):
    """Makes a :class:`Publisher` for ``sender``; called in the thread that will use it."""

    def __call__(self, sender: Address) -> Publisher: ...


@dataclass(frozen=True)
class Context:
    """The node-wide facts and seams handed to every actor."""

    sliver: str
    layout: Layout
    clock: Clock = field(default_factory=system_clock)
    hostname: str = field(default_factory=socket.gethostname)
    publishers: PublisherFactory | None = None
    registry: Registry = field(default_factory=Registry)
