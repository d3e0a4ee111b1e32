"""The coordinator's hub reader: plan and heartbeat events, told to the actor as :class:`Seen`.

:func:`start_reader` starts a :class:`dsmt.reader.HubReader` on
``layout.plan()`` and ``layout.heartbeat()`` (the retained snapshot first)
that only ``tell()``\\s the coordinator the events it read, so the actor's
mailbox never blocks on a socket: one :class:`Seen` per event, gathered in a
:class:`Batch` per wake-up of the reader. In a large slice the peers' beats
come faster than one per :data:`dsmt.reader.GATHER` (20 ms), and the reader
then wakes (and wakes the actor) once per 20 ms instead of once per beat
(:class:`dsmt.reader.HubReader`'s gathering): 20 ms more on a beat's way
against detection thresholds of seconds, and counted in the beat's measured
transit, so the thresholds' slack includes it. If the subscription is lost, the
coordinator is failed (:func:`dsmt.actor.fail`) with the reason, so its
supervisor restarts it. The actor stops it with ``stop()`` then ``join()``.
"""

from __future__ import annotations

from typing import Any

from dsmt.actor import fail, tell
from dsmt.event import Event
from dsmt.reader import GATHER, HubReader

OPEN_TIMEOUT = 10.0


class Seen:
    """An event of the plan or heartbeat channels, read by the reader thread.

    ``at`` and ``wall`` are the monotonic and wall times the reader read it
    (None when told by a test), so the coordinator can tell the delivery
    path's delay (``wall - event.ts``) from its own mailbox's (now - ``at``).
    """

    __slots__ = ("event", "at", "wall")

    def __init__(self, event: Event, at: float | None = None, wall: float | None = None) -> None:
        self.event = event
        self.at = at
        self.wall = wall


class Batch(tuple):
    """The :class:`Seen` events of one wake-up of the reader, in the order read: one message."""


def start_reader(bus: Any, ctx: Any, ref: Any, name: str) -> HubReader | None:
    """A started reader on ``bus``, or on the bus behind ``ctx.publishers``; None without one.

    Without a bus (unit tests) the coordinator runs with no reader.
    """
    bus = bus or getattr(ctx.publishers, "__self__", None)
    if bus is None or not hasattr(bus, "subscriber"):
        return None
    clock = ctx.clock
    read: list[Seen] = []

    def flush() -> None:
        tell(ref, Batch(read))
        read.clear()

    return HubReader(
        bus, (ctx.layout.plan(), ctx.layout.heartbeat()),
        lambda event, _: read.append(Seen(event, clock.monotonic(), clock.wall())),
        lambda exc: fail(ref, RuntimeError(f"hub reader: {exc}")),
        name=f"coordinator-reader-{name}", snapshot=True, gather=GATHER,
        flush=flush).start(OPEN_TIMEOUT)
