"""Helpers for testing code built on DSMT: bounded waits and a fake clock.

- :func:`wait_for` waits until a predicate holds, with a bounded timeout,
  instead of sleeping a guessed time.
- :class:`FakeClock` implements :class:`dsmt.clock.Clock`; time moves only
  when a test calls :meth:`FakeClock.advance`, which runs due timers in the
  caller's thread, in deadline order. Backoff and intensity tests become
  instant and deterministic.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The predicate of :func:`wait_for` did not hold within the timeout."""


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    message: str | Callable[[], str] = "condition",
    interval: float = 0.002,
) -> T:
    """Return the first truthy value of ``predicate()``; raise WaitTimeout after ``timeout``.

    The predicate is re-checked every ``interval`` seconds (growing to 50 ms),
    so a condition that becomes true is seen quickly, and one that never does
    fails the test with ``message`` instead of hanging it.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            text = message() if callable(message) else message
            raise WaitTimeout(f"timed out after {timeout}s waiting for {text}")
        threading.Event().wait(min(interval, remaining))
        interval = min(interval * 2, 0.05)


class _FakeTimer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock whose time moves only by :meth:`advance`. Thread-safe."""

    def __init__(self, start: float = 1000.0, wall_offset: float = 1.7e9) -> None:
        self._now = start
        self._wall_offset = wall_offset
        self._timers: list[tuple[float, int, _FakeTimer, Callable[[], None]]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def wall(self) -> float:
        with self._lock:
            return self._now + self._wall_offset

    def call_later(self, delay: float, callback: Callable[[], None]) -> _FakeTimer:
        timer = _FakeTimer()
        with self._lock:
            when = self._now + max(0.0, delay)
            heapq.heappush(self._timers, (when, next(self._order), timer, callback))
        return timer

    def pending(self) -> list[float]:
        """Deadlines of the timers not yet run or cancelled, soonest first."""
        with self._lock:
            return sorted(when for when, _, t, _ in self._timers if not t.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward, running every timer that falls due, in order."""
        with self._lock:
            target = self._now + seconds
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > target:
                    self._now = target
                    return
                when, _, timer, callback = heapq.heappop(self._timers)
                self._now = max(self._now, when)
            if not timer.cancelled:
                callback()
