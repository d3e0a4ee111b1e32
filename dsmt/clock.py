"""Time as a seam: what supervisors, backoff and monitors read and schedule with.

Every timed decision in DSMT (restart intensity windows, backoff delays,
stall timeouts, emit-rate re-emission) goes through a :class:`Clock`, so the
state machines are tested with :class:`dsmt.testing.FakeClock` without real
time. :class:`SystemClock` is the real one: ``monotonic()`` for intervals,
``wall()`` for timestamps shown to people, and ``call_later()`` backed by one
daemon timer thread per clock.

``call_later(delay, callback)`` runs ``callback()`` in the timer thread once
``delay`` seconds have passed and returns a handle whose ``cancel()`` is
idempotent. A callback must be quick and must not raise: typical callbacks
only ``tell()`` an actor. An exception from a callback is logged and does not
stop the timer thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from typing import Callable, Protocol

log = logging.getLogger(__name__)


def poll_ms(seconds: float | None) -> int | None:
    """``seconds`` as the whole milliseconds of a ZeroMQ poll, rounded up; None stays None.

    pyzmq truncates a float timeout to whole milliseconds, so a poll meant to
    wait 0.6 ms returns at once, and a loop that polls until a deadline spins
    through the last millisecond before each deadline (measured: the hub's
    keeper, reading a trickle of events every 20 ms, made ~1,500 polls a
    second). Rounding up wakes at most a millisecond late instead.
    """
    if seconds is None:
        return None
    return max(0, math.ceil(seconds * 1000))


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...


class _Handle:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SystemClock:
    """The real clock; its timer thread starts on the first ``call_later``."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Handle]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle(time.monotonic() + max(0.0, delay), callback)
        with self._cond:
            heapq.heappush(self._heap, (handle.when, next(self._order), handle))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dsmt-clock", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is handle:
                # Only a new earliest timer changes how long the thread must sleep: a
                # later one would wake it just to go back to sleep (once per schedule).
                self._cond.notify()
        return handle

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = None if not self._heap else self._heap[0][0] - time.monotonic()
                    self._cond.wait(timeout)
                _, _, handle = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            try:
                handle.callback()
            except Exception:
                log.exception("timer callback %r failed", handle.callback)


_default = SystemClock()


def system_clock() -> SystemClock:
    """The process-wide real clock (one timer thread for the whole process)."""
    return _default
