"""One daemon thread multiplexing file descriptors with a selector (epoll on Linux).

The exit watcher owns one :class:`IoLoop` for its pidfds, so a process tree
of any size costs one thread, and an exit is seen as soon as the kernel
reports it: there is no polling interval.

Threads: :meth:`IoLoop.add`, :meth:`IoLoop.remove`, :meth:`IoLoop.call_soon`
and :meth:`IoLoop.close` may be called from any thread; they hand the work to
the loop thread and wake it through a self-pipe. Callbacks run in the loop
thread, must be quick and must not block. A callback that raises is logged
(with its traceback) and unregistered; the loop keeps serving the others.
"""

from __future__ import annotations

import logging
import os
import selectors
import threading
from collections import deque
from typing import Callable

log = logging.getLogger(__name__)


class IoLoop:
    """A selector thread started lazily on first use; ``name`` names the thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._pending: deque[Callable[[], None]] = deque()
        self._selector: selectors.BaseSelector | None = None
        self._wake_r = self._wake_w = -1
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, fd: int, callback: Callable[[int], None]) -> None:
        """Call ``callback(fd)`` in the loop thread each time ``fd`` is readable."""
        self.call_soon(lambda: self._selector.register(fd, selectors.EVENT_READ, callback))

    def remove(self, fd: int) -> None:
        """Stop watching ``fd`` (idempotent). Call from the loop thread to be synchronous."""
        if threading.current_thread() is self._thread:
            self._unregister(fd)
        else:
            self.call_soon(lambda: self._unregister(fd))

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` in the loop thread, in submission order."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name}: loop is closed")
            self._pending.append(fn)
            if self._thread is None:
                self._start()
            wake = self._wake_w
        try:
            os.write(wake, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the loop is already due to wake up

    def close(self) -> None:
        """Stop the thread after the pending work; registered fds are not closed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread, wake = self._thread, self._wake_w
        if thread is not None:
            os.write(wake, b"\0")
            if thread is not threading.current_thread():
                thread.join()

    def _start(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _unregister(self, fd: int) -> None:
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError):
            pass

    def _run(self) -> None:
        selector = self._selector
        try:
            while True:
                for key, _ in selector.select():
                    if key.data is None:
                        try:
                            while os.read(self._wake_r, 4096):
                                pass
                        except BlockingIOError:
                            pass
                        continue
                    try:
                        key.data(key.fd)
                    except Exception:
                        log.exception("%s: callback for fd %d failed", self._name, key.fd)
                        self._unregister(key.fd)
                while True:
                    with self._lock:
                        if not self._pending:
                            closed = self._closed
                            break
                        fn = self._pending.popleft()
                    try:
                        fn()
                    except Exception:
                        log.exception("%s: %r failed", self._name, fn)
                if closed:
                    return
        finally:
            selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
