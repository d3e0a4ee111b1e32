"""The coordinator's hub reader: a thread that turns plan and heartbeat events into messages.

:class:`HubReader` owns one hub subscription (``layout.plan()`` and
``layout.heartbeat()``, with the retained snapshot first) in a thread of its
own, and only ``tell()``s the coordinator a :class:`Seen` per event, so the
actor's mailbox never blocks on a socket. The socket is created, read and
closed in that thread (pyzmq's rule).

Contract: :meth:`HubReader.start` returns once the subscription is open (it
raises what opening it raised, within ``open_timeout``); if reading fails
later, the coordinator is failed (:func:`dsmt.actor.fail`) with the reason,
so its supervisor restarts it. :meth:`HubReader.stop` sets the subscriber's
stop latch (:mod:`dsmt.latch`), which ends the thread's blocking read at
once, and waits for the thread. :func:`start_reader` finds the bus a
coordinator reads from and starts its reader.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from dsmt.actor import fail, tell
from dsmt.event import Event
from dsmt.latch import Latch

log = logging.getLogger(__name__)

STOP_WAIT = 2.0


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
    return HubReader(bus, ctx.layout, ref, name, ctx.clock).start()


class HubReader:
    """Reads the plan and heartbeat channels of ``layout`` from ``bus`` and tells ``ref``."""

    def __init__(self, bus: Any, layout: Any, ref: Any, name: str, clock: Any) -> None:
        self.clock = clock
        self.bus = bus
        self.layout = layout
        self.ref = ref
        self.name = name
        self._stopping = Latch()
        self._thread: threading.Thread | None = None

    def start(self, open_timeout: float = 10.0) -> HubReader:
        ready = threading.Event()
        problem: list[BaseException] = []
        self._thread = threading.Thread(target=self._read, args=(ready, problem),
                                        name=f"coordinator-reader-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(open_timeout)
        if problem:
            raise problem[0]
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT)
            if self._thread.is_alive():
                log.error("%s: the hub reader did not stop within %ss", self.name, STOP_WAIT)
                return  # it may still poll on the latch: leave it open
        self._stopping.close()

    def _read(self, ready: threading.Event, problem: list[BaseException]) -> None:
        try:
            sub = self.bus.subscriber([self.layout.plan(), self.layout.heartbeat()],
                                      snapshot=True, stop=self._stopping)
        except BaseException as exc:
            problem.append(exc)
            ready.set()
            return
        ready.set()
        try:
            while not self._stopping.is_set():
                event = sub.recv()
                if event is not None:
                    tell(self.ref, Seen(event, self.clock.monotonic(), self.clock.wall()))
        except BaseException as exc:  # the socket is gone: the actor must know
            log.exception("%s: the hub reader stopped", self.name)
            fail(self.ref, RuntimeError(f"hub reader: {exc}"))
        finally:
            sub.close()
