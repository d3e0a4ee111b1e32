"""The coordinator's hub reader: plan and heartbeat events, told to the actor as :class:`Seen`.

:func:`start_reader` starts a :class:`dsmt.reader.HubReader` on
``layout.plan()`` and ``layout.heartbeat()`` (the retained snapshot first)
that only ``tell()``\\s the coordinator a :class:`Seen` per event, so the
actor's mailbox never blocks on a socket. If the subscription is lost, the
coordinator is failed (:func:`dsmt.actor.fail`) with the reason, so its
supervisor restarts it. The actor stops it with ``stop()`` then ``join()``.
"""

from __future__ import annotations

from typing import Any

from dsmt.actor import fail, tell
from dsmt.event import Event
from dsmt.reader import HubReader

OPEN_TIMEOUT = 10.0


class Seen:
    """An event of the plan or heartbeat channels, told by the reader thread.

    ``at`` and ``wall`` are the monotonic and wall times the reader read it
    (None when told by a test), so the coordinator can tell the delivery
    path's delay (``wall - event.ts``) from its own mailbox's (now - ``at``).
    """

    __slots__ = ("event", "at", "wall")

    def __init__(self, event: Event, at: float | None = None, wall: float | None = None) -> None:
        self.event = event
        self.at = at
        self.wall = wall


def start_reader(bus: Any, ctx: Any, ref: Any, name: str) -> HubReader | None:
    """A started reader on ``bus``, or on the bus behind ``ctx.publishers``; None without one.

    Without a bus (unit tests) the coordinator runs with no reader.
    """
    bus = bus or getattr(ctx.publishers, "__self__", None)
    if bus is None or not hasattr(bus, "subscriber"):
        return None
    clock = ctx.clock
    return HubReader(
        bus, (ctx.layout.plan(), ctx.layout.heartbeat()),
        lambda event, _: tell(ref, Seen(event, clock.monotonic(), clock.wall())),
        lambda exc: fail(ref, RuntimeError(f"hub reader: {exc}")),
        name=f"coordinator-reader-{name}", snapshot=True).start(OPEN_TIMEOUT)
