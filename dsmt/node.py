"""One sliver's runtime: the ZeroMQ context, the hub, the actor registry and the root supervisor.

A :class:`Node` owns, for its whole life:

- one ZeroMQ context, terminated last;
- the :class:`dsmt.hub.Hub`, bound in ``run_dir`` (0700) for other processes
  of the machine (``dsmt events``, tools) and on ``inproc://`` for its actors;
- its own :class:`dsmt.registry.Registry` (never pykka's global one);
- the root :class:`dsmt.supervisor.Supervisor` at ``/<sliver>``, whose
  children the caller gives as child specs (``actors.sliver`` builds the
  sliver tree; tests give any specs).

Exit codes of :meth:`Node.run` (what the OS-level supervisor — the systemd
unit in ``conf/`` — acts on):

- :data:`EXIT_OK` (0): stopped by SIGTERM/SIGINT or :meth:`Node.stop`, and
  everything stopped within the deadline;
- :data:`EXIT_GAVE_UP` (1): the root supervisor gave up (restart intensity
  reached, or a child failed to start); the reason is published and logged;
- :data:`EXIT_DEADLINE` (3): the orderly shutdown did not finish within the
  deadline; the process exits anyway (``os._exit``) so no stuck actor
  thread keeps a dead sliver alive.

Threads: :meth:`run` must be called from the main thread (it installs the
signal handlers); :meth:`start`, :meth:`stop` and :meth:`wait` from any.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import zmq

from dsmt.actor import Error, Origin
from dsmt.bus import Bus
from dsmt.channels import Layout
from dsmt.childspec import REST_FOR_ONE, ChildSpec
from dsmt.clock import Clock, system_clock
from dsmt.context import Context
from dsmt.errors import SupervisorError
from dsmt.hub import Hub
from dsmt.latch import Latch, wait_in_main_thread
from dsmt.registry import Registry
from dsmt.supervisor import Supervisor

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_GAVE_UP = 1
EXIT_DEADLINE = 3
DEADLINE = 20.0


class Node:
    """The runtime of one sliver; ``with Node(...) as node:`` runs it for a block."""

    def __init__(
        self,
        sliver: str,
        layout: Layout,
        run_dir: str | os.PathLike[str],
        children: Sequence[ChildSpec] = (),
        *,
        strategy: str = REST_FOR_ONE,
        intensity: int = 3,
        period: float = 30.0,
        clock: Clock | None = None,
        hostname: str | None = None,
    ) -> None:
        self.sliver = sliver
        self.layout = layout
        self.run_dir = Path(run_dir)
        self._children = tuple(children)
        self._flags = dict(strategy=strategy, intensity=intensity, period=period)
        self.zmq = zmq.Context()
        self.hub = Hub(self.zmq, self.run_dir, name=sliver)
        self.bus = Bus(self.zmq, self.hub.inproc_endpoints)
        self.registry = Registry()
        self.context = Context(
            sliver=sliver,
            layout=layout,
            clock=clock or system_clock(),
            hostname=hostname or socket.gethostname(),
            publishers=self.bus.publisher,
            registry=self.registry,
        )
        self.root: Any = None
        self._origin: Origin | None = None
        self.exit_code: int | None = None
        self.give_up_reason: Error | None = None
        self._done = threading.Event()
        self._wake = Latch()  # set by a signal or a give-up: time to stop
        self._lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------

    def start(self, start_timeout: float | None = 60.0) -> Node:
        """Start the hub, then the root supervisor and its children, in order.

        Raises what the hub raises when it cannot bind, and
        :class:`dsmt.errors.SupervisorError` when a root child fails to start
        (the hub is stopped again then).
        """
        self.hub.start()
        origin = self._origin = Origin.root(self.context)
        try:
            self.root = Supervisor.start(origin, self._children, on_give_up=self._gave_up,
                                         **self._flags)
            outcome = origin.lifeline.wait_started(start_timeout)
            if outcome is not True:
                raise SupervisorError("start_failed", outcome or f"not started in {start_timeout}s")
        except BaseException:
            if self.root is not None and self.root.is_alive():
                self.root.stop(block=True, timeout=DEADLINE)
            self._close_hub()
            raise
        return self

    def stop(self, deadline: float = DEADLINE) -> int:
        """Stop the tree (children in reverse start order), then the hub; idempotent.

        Returns the exit code: EXIT_DEADLINE if the tree did not stop in time.
        """
        with self._lock:
            if self._done.is_set():
                return self.exit_code or EXIT_OK
            code = self.exit_code if self.exit_code is not None else EXIT_OK
            root, self.root = self.root, None
            if root is not None:
                started = time.monotonic()
                try:
                    root.stop(block=True, timeout=deadline)
                except Exception as exc:  # pykka.Timeout, or the root already gone
                    if root.is_alive():
                        log.error("node %s: tree not stopped within %.1fs: %s",
                                  self.sliver, deadline, exc)
                        code = EXIT_DEADLINE
                # pykka answers the stop before the actor's thread has finished
                # its exit (final status, unregistering): wait for that too.
                left = max(0.0, deadline - (time.monotonic() - started))
                if self._origin.lifeline.wait_exited(left) is None:
                    code = EXIT_DEADLINE
            self._close_hub()
            self.exit_code = code
            self._done.set()
            return code

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the node has stopped; its exit code, or None on timeout."""
        if not self._done.wait(timeout):
            return None
        return self.exit_code

    def run(self, deadline: float = DEADLINE) -> int:
        """Start, serve until SIGTERM/SIGINT or a give-up, stop; the exit code (main thread)."""
        previous = {
            sig: signal.signal(sig, lambda signum, frame: self._wake.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            try:
                self.start()
            except SupervisorError as exc:
                log.error("node %s: the sliver tree did not start: %s", self.sliver, exc)
                return EXIT_GAVE_UP
            wait_in_main_thread(self._wake)  # no periodic wake-up (see dsmt.latch)
            started = time.monotonic()
            watchdog = threading.Timer(deadline + 5.0, _exit_now, (EXIT_DEADLINE,))
            watchdog.daemon = True
            watchdog.start()
            code = self.stop(deadline)
            watchdog.cancel()
            log.info("node %s stopped in %.2fs (exit %d)", self.sliver,
                     time.monotonic() - started, code)
            return code
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # --- internals ---------------------------------------------------------

    def _gave_up(self, reason: Error) -> None:
        # Runs in the root supervisor's thread, which is about to exit: only
        # record and wake the main thread; the main thread tears down.
        log.error("node %s: root supervisor gave up: %s", self.sliver, reason)
        self.give_up_reason = reason
        self.exit_code = EXIT_GAVE_UP
        self._wake.set()

    def _close_hub(self) -> None:
        try:
            self.hub.stop()
        finally:
            self.zmq.destroy(linger=0)


def _exit_now(code: int) -> None:
    log.critical("orderly shutdown overran its deadline; exiting with %d", code)
    logging.shutdown()
    os._exit(code)
