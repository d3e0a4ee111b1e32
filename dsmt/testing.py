"""Helpers for testing code built on DSMT: bounded waits and a fake clock.

- :func:`wait_for` waits until a predicate holds, with a bounded timeout,
  instead of sleeping a guessed time.
- :class:`FakeClock` implements :class:`dsmt.clock.Clock`; time moves only
  when a test calls :meth:`FakeClock.advance`, which runs due timers in the
  caller's thread, in deadline order. Backoff and intensity tests become
  instant and deterministic.
- :class:`RecordingPublishers` is a publisher factory that keeps every event
  in memory, so tests assert on status events without a hub.
- :func:`stop_all` stops every actor of a :class:`dsmt.registry.Registry`.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Any, Callable, TypeVar

from dsmt.event import Address, Event, Sequencer
from dsmt.registry import Registry

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


class RecordingPublisher:
    """An in-memory :class:`dsmt.context.Publisher` that records into its factory.

    Events are stamped by a :class:`dsmt.event.Sequencer` per publisher, as a
    real sender would stamp them. ``publish`` after ``close`` raises
    RuntimeError, so a test sees an actor that publishes after its end.
    """

    def __init__(self, sender: Address, sink: RecordingPublishers) -> None:
        self.sender = sender
        self.thread = threading.get_ident()
        self.closed = False
        self._sequencer = Sequencer(sender)
        self._sink = sink

    def publish(
        self,
        channel: str,
        type: str,
        payload: Any,
        *,
        retain: bool = False,
        to: Address | None = None,
    ) -> Event:
        if self.closed:
            raise RuntimeError(f"publisher of {self.sender} used after close()")
        event = self._sequencer.make(channel, type, payload, retain=retain, to=to)
        self._sink._record(event)
        return event

    def close(self) -> None:
        self.closed = True


class RecordingPublishers:
    """A :class:`dsmt.context.PublisherFactory` keeping every event in memory. Thread-safe."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._publishers: list[RecordingPublisher] = []
        self._cond = threading.Condition()

    def __call__(self, sender: Address) -> RecordingPublisher:
        publisher = RecordingPublisher(sender, self)
        with self._cond:
            self._publishers.append(publisher)
        return publisher

    def _record(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    @property
    def events(self) -> list[Event]:
        """A snapshot of every event recorded so far, in publication order."""
        with self._cond:
            return list(self._events)

    @property
    def publishers(self) -> list[RecordingPublisher]:
        with self._cond:
            return list(self._publishers)

    def on(self, channel: str) -> list[Event]:
        """The events published on ``channel`` exactly."""
        return [e for e in self.events if e.channel == channel]

    def states(self, channel: str) -> list[str]:
        """The ``state`` field of the status events on ``channel``, in order."""
        return [e.payload["state"] for e in self.on(channel)]

    def latest(self, channel: str) -> Event | None:
        """The newest event on ``channel`` (what a retaining hub would keep)."""
        found = self.on(channel)
        return found[-1] if found else None

    def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float = 10.0
    ) -> Event:
        """The first recorded event matching ``predicate``; WaitTimeout after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((e for e in self._events if predicate(e)), None)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(f"timed out after {timeout}s waiting for an event")
                self._cond.wait(remaining)


def stop_all(registry: Registry, timeout: float = 10.0) -> None:
    """Stop every actor of ``registry``, shallowest paths first, and wait for each.

    Parents go first: a supervisor stops its own children in order, whereas
    stopping a child first would only make its supervisor restart it.
    Raises WaitTimeout if the registry is not empty within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while len(registry):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(
                f"actors still registered after {timeout}s: {sorted(registry.list())}")
        path, ref = min(registry.list().items(), key=lambda item: item[0].count("/"))
        try:
            ref.stop(block=True, timeout=remaining)
        except Exception:
            pass  # already stopping or stuck: the wait below bounds it
        wait_for(lambda: registry.get(path) is not ref, max(0.01, deadline - time.monotonic()),
                 f"{path} to unregister")
