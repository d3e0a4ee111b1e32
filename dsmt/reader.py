"""A thread that owns one hub subscription and hands every event to a callback.

An actor's thread is busy in its mailbox loop, and a bus socket must be used
only by the thread that created it, so an actor that reads the hub (the
bridge's exporter, the coordinator, the commander) runs a :class:`HubReader`:
it owns a :class:`dsmt.bus.Subscriber` on some prefixes (optionally with the
hub's retained snapshot first) and calls ``handle(event, from_snapshot)`` for
every event, in its own thread. A handler is typically one ``tell()``.

Contract:

- :meth:`HubReader.start` returns once the subscription is confirmed (and the
  snapshot read), else raises what opening it raised, or TimeoutError.
- The reader is a failure boundary (STYLE.md habit 3): an exception from the
  handler is logged with its traceback, counted in ``errors``, and the loop
  goes on. Only the loss of the socket itself (the hub or the ZeroMQ context
  gone) ends the thread; ``on_fatal(exc)`` is then called in that thread, so
  the owner can fail and be restarted by its supervisor -- unless the reader
  was being stopped anyway.
- :meth:`HubReader.stop` (any thread) sets the subscriber's stop latch
  (:mod:`dsmt.latch`): the blocking read returns at once, no polling.
  :meth:`HubReader.join` waits for the thread and then releases the latch;
  :meth:`HubReader.close` does both, as an owner's stop hook wants.

Gathering (``gather`` seconds, 0 = off), the interrupt moderation of a
network driver: each wake-up of the reader hands on every event waiting,
then calls ``flush()`` (an owner that tells its actor one message per batch
sends it there). Once events come fast enough for a window to gather
:data:`PAYS` or more -- that many wake-ups, and one more, within one
``gather`` -- the reader stops waking per event: it sleeps ``gather``,
hands on what gathered meanwhile, and goes on so while each window gathers
at least :data:`PAYS`. A busy reader then wakes once per ``gather`` instead
of once per event (and so does an actor told one batch per wake-up), at
the price of at most ``gather`` of added delay. Slower streams are handed
on as they come: a sleep costs about what two wake-ups do, so a window
that gathers fewer saves nothing (measured with ``python -m benchmarks
swarm``, README "What a large slice costs each node": gathering from two
events per window on made a node at 100 beats/s no cheaper).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable

from dsmt.event import Event
from dsmt.latch import Latch

log = logging.getLogger(__name__)

BATCH = 256  # events handed on between two flushes, at most
GATHER = 0.02  # seconds: the gathering window DSMT's busy readers use (see above)
PAYS = 3  # events a window must gather for gathering to pay (see above)


class Gathering:
    """The gathering rule of the module docstring, for any reader that wakes per event.

    ``woke(now, gathered)`` after each wake-up (``now`` on a monotonic
    clock, ``gathered`` events or stanzas it took) says whether the next
    read should wait for the end of a window: after :data:`PAYS` wake-ups
    and one more within ``window``, and then for as long as each window
    gathers at least :data:`PAYS`. Used by :class:`HubReader` and by the
    PsEPR client's connection (``gateways.psepr.client``).
    """

    def __init__(self, window: float) -> None:
        self.window = window
        self.busy = False
        self._recent: deque[float] = deque(maxlen=PAYS)  # the last wake-ups, when not busy

    def woke(self, now: float, gathered: int) -> bool:
        if self.busy:  # the first wake-up after a window: did it gather enough?
            self.busy = gathered >= PAYS
        else:
            recent = self._recent
            self.busy = len(recent) == PAYS and now - recent[0] < self.window
        if self.busy:
            self._recent.clear()
        else:
            self._recent.append(now)
        return self.busy


class HubReader:
    """Reads ``prefixes`` from ``bus`` in a thread named ``name``; see the module docstring."""

    def __init__(self, bus: Any, prefixes: Iterable[str], handle: Callable[[Event, bool], Any],
                 on_fatal: Callable[[BaseException], Any], *, name: str,
                 snapshot: bool = False, gather: float = 0.0,
                 flush: Callable[[], Any] | None = None) -> None:
        self.name = name
        self.bus = bus
        self.prefixes = tuple(prefixes)
        self.handle = handle
        self.on_fatal = on_fatal
        self.gather = gather
        self.flush = flush
        self.wakeups = 0  # reads that handed on at least one event
        self._left = 0  # snapshot events still to hand on (from_snapshot=True)
        self.snapshot = snapshot and bool(self.prefixes)
        self.errors = 0
        self.undecodable = 0
        self._stopping = Latch()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self, timeout: float) -> HubReader:
        """Start the thread; returns once subscribed, else raises what opening raised.

        On a timeout the reader is also told to stop, so a subscription that
        opens later ends at once instead of reading for nobody.
        """
        self._thread.start()
        if not self._ready.wait(timeout):
            self._stopping.set()
            raise TimeoutError(f"{self.name}: not subscribed within {timeout}s")
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Ask the reader to end (any thread): its blocking read returns at once."""
        self._stopping.set()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; False if it is still running after ``timeout``."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        self._stopping.close()  # nothing polls on it any more
        return True

    def close(self, timeout: float) -> bool:
        """:meth:`stop` then :meth:`join`; logs an error if the thread outlives ``timeout``."""
        self.stop()
        if self.join(timeout):
            return True
        log.error("%s: did not stop within %ss", self.name, timeout)
        return False

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            sub = self.bus.subscriber(self.prefixes, snapshot=self.snapshot,
                                      stop=self._stopping)
        except BaseException as exc:  # reported to start(), in the starting thread
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._serve(sub)
        except BaseException as exc:  # the socket is unusable: the owner must know
            if not self._stopping.is_set():
                log.exception("%s: stopped by an error", self.name)
                self.on_fatal(exc)
        finally:
            sub.close()

    def _serve(self, sub: Any) -> None:
        self._left = 0 if sub.snapshot is None else len(sub.snapshot.events)
        stopping, gather, recv = self._stopping, self.gather, sub.recv
        rule = Gathering(gather)
        while not stopping.is_set():
            count = self._hand_on(sub, recv())  # wait for an event, or the stop latch
            if not count or not gather:
                continue
            # Busy: sleep a window, hand on what gathered, again while it pays.
            while rule.woke(time.monotonic(), count) and not stopping.wait(gather):
                count = self._hand_on(sub, recv(0))

    def _hand_on(self, sub: Any, event: Event | None) -> int:
        """Hand on ``event`` and every event waiting after it, then flush; how many."""
        self.undecodable = sub.undecodable
        if event is None:
            return 0
        self.wakeups += 1
        handle, recv = self.handle, sub.recv
        count = 0
        while event is not None:
            from_snapshot = self._left > 0
            self._left -= from_snapshot
            try:
                handle(event, from_snapshot)
            except Exception:  # the boundary: one event never stops the reader
                self.errors += 1
                log.exception("%s: cannot handle event %s on %s", self.name, event.id,
                              event.channel)
            count += 1
            if count % BATCH == 0:  # a flood: the owner still hears of it in bounded batches
                self._flush()
            event = recv(0)
        self.undecodable = sub.undecodable
        if count % BATCH:
            self._flush()
        return count

    def _flush(self) -> None:
        if self.flush is not None:
            try:
                self.flush()
            except Exception:  # the same boundary as a handler's
                self.errors += 1
                log.exception("%s: cannot flush", self.name)
