"""Sees every process exit the moment it happens: pidfds on one selector thread.

:class:`ExitWatcher` opens a pidfd (``os.pidfd_open``) for each watched
process and waits on all of them in one :class:`~._ioloop.IoLoop` thread. A
pidfd becomes readable when its process ends, so there is no polling
interval. For our own children the watcher then reaps the process
(``waitid(P_PIDFD)``) and reports its exit code or signal; for adopted
processes (not our children, so not ours to reap) it reports the exit with an
unknown status.

When pidfds are unavailable (Linux < 5.3, other systems) it falls back to one
waiter thread per process: ``os.waitpid`` for a child (still immediate), and
psutil's ``wait()`` for an adopted process (which polls, the only way there).

Every exit resolves ``handle.exited`` (a ``concurrent.futures.Future``);
callbacks added with ``add_done_callback`` run in the watcher thread, so they
must be quick: typically they ``tell()`` an actor.
"""

from __future__ import annotations

import logging
import os
import threading

import psutil

from actors.process._ioloop import IoLoop
from actors.process.handle import ExitStatus, ProcessHandle

log = logging.getLogger(__name__)

HAVE_PIDFD = hasattr(os, "pidfd_open") and hasattr(os, "P_PIDFD")


def status_from_waitid(pid: int, result: os.waitid_result | None) -> ExitStatus:
    if result is None:
        return ExitStatus(pid)
    if result.si_code == os.CLD_EXITED:
        return ExitStatus(pid, code=result.si_status)
    return ExitStatus(pid, signal=result.si_status)  # CLD_KILLED or CLD_DUMPED


def status_from_wait(pid: int, status: int) -> ExitStatus:
    if os.WIFSIGNALED(status):
        return ExitStatus(pid, signal=os.WTERMSIG(status))
    return ExitStatus(pid, code=os.WEXITSTATUS(status))


class ExitWatcher:
    """Watches processes for exit; one thread for all of them (see the module docstring)."""

    def __init__(self, name: str = "dsmt-exits", use_pidfd: bool = HAVE_PIDFD) -> None:
        self._loop = IoLoop(name)
        self._use_pidfd = use_pidfd

    def open_pidfd(self, pid: int) -> int | None:
        """A pidfd for ``pid``, or None if pidfds are not used; raises ProcessLookupError."""
        return os.pidfd_open(pid) if self._use_pidfd else None

    def watch(self, handle: ProcessHandle, pidfd: int | None = None) -> None:
        """Resolve ``handle.exited`` when the process ends; ``pidfd`` (if given) is taken over.

        For a child, the watcher reaps it; nobody else may wait for it.
        """
        if self._use_pidfd:
            if pidfd is None:
                try:
                    pidfd = os.pidfd_open(handle.pid)
                except ProcessLookupError:
                    # Only an adopted process can vanish before this: a child stays a zombie.
                    handle.exited.set_result(ExitStatus(handle.pid))
                    return
            self._loop.add(pidfd, lambda fd: self._on_exit(fd, handle))
        else:
            threading.Thread(target=self._wait, args=(handle,), daemon=True,
                             name=f"dsmt-wait-{handle.pid}").start()

    def close(self) -> None:
        self._loop.close()

    def _on_exit(self, pidfd: int, handle: ProcessHandle) -> None:
        self._loop.remove(pidfd)
        try:
            if handle.adopted:
                status = ExitStatus(handle.pid)
            else:
                try:
                    result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
                except ChildProcessError:
                    log.error("pid %d was reaped by someone else; its status is lost", handle.pid)
                    result = None
                status = status_from_waitid(handle.pid, result)
        finally:
            os.close(pidfd)
        _resolve(handle, status)

    def _wait(self, handle: ProcessHandle) -> None:
        if handle.adopted:
            try:
                psutil.Process(handle.pid).wait()
            except psutil.NoSuchProcess:
                pass
            status = ExitStatus(handle.pid)
        else:
            try:
                _, raw = os.waitpid(handle.pid, 0)
                status = status_from_wait(handle.pid, raw)
            except ChildProcessError:
                status = ExitStatus(handle.pid)
        _resolve(handle, status)


def _resolve(handle: ProcessHandle, status: ExitStatus) -> None:
    if handle.popen is not None and handle.popen.returncode is None:
        handle.popen.returncode = status.returncode if status.known else -1
    handle.exited.set_result(status)


_default: ExitWatcher | None = None
_default_lock = threading.Lock()


def default_watcher() -> ExitWatcher:
    """The process-wide watcher (one thread for the whole node)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ExitWatcher()
        return _default
