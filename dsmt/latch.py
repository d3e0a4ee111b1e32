"""A stop flag a ZeroMQ poll can wait on: how one thread ends another's blocking read.

A thread that owns a hub socket waits in ``zmq.Poller.poll``; a
``threading.Event`` set by another thread cannot wake it, so readers used to
poll every 0.2-1 s to look at their flag, or to publish a wake-up event on a
private hub channel (which the hub might not carry). A :class:`Latch` is that
flag with a file descriptor: ``set()`` (any thread, idempotent) makes
:meth:`fileno` readable for good, so a poll that includes it returns at once,
now and every time after. :class:`dsmt.bus.Subscriber` takes one
(``Bus.subscriber(..., stop=latch)``) and its ``recv`` returns None once it
is set.

The descriptor is the read end of a pipe (non-blocking, not inherited by
child processes). :meth:`close` releases both ends; call it once the thread
that polls on it has ended (a closed descriptor in a poll is an error, and
its number may be reused). A latch that is garbage collected is closed.

:func:`wait_in_main_thread` is the main thread's side: a process that serves
until a signal (or another thread) sets its latch sleeps there without
waking every half second to let Python run its signal handlers.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import weakref


class Latch:
    """A flag that is set once and stays set, with a descriptor readable from then on."""

    def __init__(self) -> None:
        self._set = False
        self._lock = threading.RLock()  # set() may run again in a signal handler
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self._read, self._write = read, write
        self._closer = weakref.finalize(self, _close_fds, read, write)

    def set(self) -> None:
        """Set the flag and make :meth:`fileno` readable (any thread; idempotent)."""
        with self._lock:
            if self._set:
                return
            self._set = True
            if self._closer.alive:
                os.write(self._write, b"\0")  # one byte, never read: stays readable

    def is_set(self) -> bool:
        return self._set

    def fileno(self) -> int:
        return self._read

    def wait(self, timeout: float) -> bool:
        """Sleep until the flag is set or ``timeout`` seconds passed; returns the flag."""
        if not self._set:
            poller = select.poll()
            poller.register(self._read, select.POLLIN)
            poller.poll(max(0, int(timeout * 1000)))
        return self._set

    def close(self) -> None:
        """Release the descriptors (idempotent); the flag itself keeps working."""
        with self._lock:
            self._closer()


def _close_fds(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


def wait_in_main_thread(latch: Latch) -> None:
    """Block the main thread until ``latch`` is set, by a signal handler or another thread.

    Python runs a signal handler in the main thread, between two bytecodes:
    a main thread blocked in a wait may not get to it until something else
    wakes it, so such loops used to wake every 0.5 s. Here a poll (not
    ``select``: no limit on descriptor numbers) waits on the latch and on
    :func:`signal.set_wakeup_fd`, which the C-level handler writes whichever
    thread received the signal:
    the main thread wakes, runs the handler (which sets the latch) and
    returns. Call it from the main thread only; the previous wake-up fd is
    restored on return.
    """
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    poller = select.poll()
    poller.register(latch.fileno(), select.POLLIN)
    poller.register(read, select.POLLIN)
    previous = signal.set_wakeup_fd(write)
    try:
        while not latch.is_set():
            if any(fd == read for fd, _ in poller.poll()):
                try:
                    os.read(read, 512)  # the signal numbers: the handlers run anyway
                except BlockingIOError:
                    pass
    finally:
        signal.set_wakeup_fd(previous)
        os.close(read)
        os.close(write)
