"""The bridge's hub-side reader thread, owning the export subscription.

A pykka actor's thread is busy in its mailbox loop, and a bus socket must be
used only by the thread that created it, so the bridge runs a
:class:`HubReader`: it owns a :class:`dsmt.bus.Subscriber` on the export
prefixes (with the hub's retained snapshot first) and hands every event to
a callback (the exporter) in this thread. (Imports need no thread of their
own: the PsEPR client's thread publishes them, see
:mod:`gateways.bridge.importer`.)

The reader is a failure boundary (STYLE.md habit 3): an exception while
handling one event is logged with its traceback, counted in ``errors`` and
the loop goes on. Only the loss of the socket itself (the hub or the ZeroMQ
context gone) ends the thread; ``on_fatal(exc)`` is then called in that
thread so the actor can fail and be restarted by its supervisor.

Stopping: the reader blocks in ``recv``; :meth:`HubReader.stop` sets its
subscriber's stop latch (:mod:`dsmt.latch`), so it returns at once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Sequence

from dsmt.bus import Bus
from dsmt.event import Event
from dsmt.latch import Latch

log = logging.getLogger(__name__)


class HubReader:
    """Reads the export prefixes from the hub and calls ``handle(event, from_snapshot)``."""

    def __init__(self, bus: Bus, prefixes: Sequence[str], handle: Callable[[Event, bool], Any],
                 on_fatal: Callable[[BaseException], Any], name: str = "bridge-reader") -> None:
        self.name = name
        self.bus = bus
        self.prefixes = tuple(prefixes)
        self.handle = handle
        self.on_fatal = on_fatal
        self.errors = 0
        self.undecodable = 0
        self._stopping = Latch()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self, timeout: float) -> None:
        """Start the thread; returns once its socket is open, else raises what opening raised."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"{self.name}: socket not open within {timeout}s")
        if self._startup_error is not None:
            raise self._startup_error

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

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            sub = self.bus.subscriber(self.prefixes, snapshot=bool(self.prefixes),
                                      stop=self._stopping)
        except BaseException as exc:  # reported to start(), in the starting thread
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._serve(sub)
        except BaseException as exc:  # the socket is unusable: the actor must know
            log.exception("%s: stopped by an error", self.name)
            self.on_fatal(exc)
        finally:
            sub.close()

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
