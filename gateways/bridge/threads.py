"""The bridge's two hub-side threads, each owning one bus socket.

A pykka actor's thread is busy in its mailbox loop, and a bus socket must be
used only by the thread that created it, so the bridge runs:

- a :class:`HubReader`: owns a :class:`dsmt.bus.Subscriber` on the export
  prefixes (with the hub's retained snapshot first) and hands every event to
  a callback (the exporter) in this thread;
- a :class:`HubWriter`: owns a :class:`dsmt.bus.Publisher` and forwards, with
  ``send(event)`` (unchanged: sender, id and seq kept), the imported events
  other threads :meth:`HubWriter.offer` it through a bounded queue.

Both are failure boundaries (STYLE.md habit 3): an exception while handling
one event is logged with its traceback, counted in ``errors`` and the loop
goes on. Only the loss of the socket itself (the hub or the ZeroMQ context
gone) ends a thread; ``on_fatal(exc)`` is then called in that thread so the
actor can fail and be restarted by its supervisor.

Stopping: the reader blocks in ``recv``; :meth:`HubReader.stop` sets its
subscriber's stop latch (:mod:`dsmt.latch`), so it returns at once; the
writer ends after the events queued before its :meth:`HubWriter.stop`.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Sequence

from dsmt.bus import Bus
from dsmt.event import Address, Event
from dsmt.latch import Latch

log = logging.getLogger(__name__)

_STOP = object()


class _Thread:
    """Start/stop handshake shared by both threads."""

    name = "bridge"

    def __init__(self, on_fatal: Callable[[BaseException], Any]) -> None:
        self.on_fatal = on_fatal
        self.errors = 0
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)

    def start(self, timeout: float) -> None:
        """Start the thread; returns once its socket is open, else raises what opening raised."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"{self.name}: socket not open within {timeout}s")
        if self._startup_error is not None:
            raise self._startup_error

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; False if it is still running after ``timeout``."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            sock = self._open()
        except BaseException as exc:  # reported to start(), in the starting thread
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._serve(sock)
        except BaseException as exc:  # the socket is unusable: the actor must know
            log.exception("%s: stopped by an error", self.name)
            self.on_fatal(exc)
        finally:
            sock.close()

    def _open(self) -> Any:
        raise NotImplementedError

    def _serve(self, sock: Any) -> None:
        raise NotImplementedError


class HubWriter(_Thread):
    """Publishes imported events on the hub, unchanged, from its own thread."""

    def __init__(self, bus: Bus, sender: Address, capacity: int,
                 on_fatal: Callable[[BaseException], Any]) -> None:
        self.name = f"bridge-writer-{sender}"
        super().__init__(on_fatal)
        self.bus = bus
        self.sender = sender
        self.sent = 0
        self.full = 0        # refused by offer(): the queue was full
        self.hub_dropped = 0  # given up by the publisher: the hub's queue was full
        self._queue: queue.Queue[Any] = queue.Queue(capacity)

    def offer(self, event: Event) -> bool:
        """Queue ``event`` for the hub (any thread); False (and counted) if the queue is full."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.full += 1
            return False
        return True

    def stop(self) -> None:
        """Ask the thread to close its publisher and end, after what is queued (any thread)."""
        self._queue.put(_STOP)

    def _open(self) -> Any:
        return self.bus.publisher(self.sender)

    def _serve(self, publisher: Any) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                publisher.send(item)
                self.sent += 1
                self.hub_dropped = publisher.dropped
            except Exception:  # one bad event must not stop the imports
                self.errors += 1
                log.exception("%s: cannot publish an imported event on the hub", self.name)


class HubReader(_Thread):
    """Reads the export prefixes from the hub and calls ``handle(event, from_snapshot)``."""

    def __init__(self, bus: Bus, prefixes: Sequence[str], handle: Callable[[Event, bool], Any],
                 on_fatal: Callable[[BaseException], Any], name: str = "bridge-reader") -> None:
        self.name = name
        super().__init__(on_fatal)
        self.bus = bus
        self.prefixes = tuple(prefixes)
        self.handle = handle
        self.undecodable = 0
        self._stopping = Latch()

    def stop(self) -> None:
        """Ask the reader to end (any thread): its blocking read returns at once."""
        self._stopping.set()

    def join(self, timeout: float) -> bool:
        ended = super().join(timeout)
        if ended:  # nothing polls on the latch any more
            self._stopping.close()
        return ended

    def _open(self) -> Any:
        return self.bus.subscriber(self.prefixes, snapshot=bool(self.prefixes),
                                  stop=self._stopping)

    def _serve(self, sub: Any) -> None:
        snapshot = sub.snapshot
        left = 0 if snapshot is None else len(snapshot.events)
        while not self._stopping.is_set():
            event = sub.recv()
            self.undecodable = sub.undecodable
            if event is None:
                continue
            from_snapshot = left > 0
            left -= from_snapshot
            try:
                self.handle(event, from_snapshot)
            except Exception:  # the bridge boundary: one event never stops the exports
                self.errors += 1
                log.exception("%s: cannot export event %s on %s", self.name, event.id,
                              event.channel)
