"""Stops a process group: signal → grace timeout → SIGKILL, without blocking anyone.

:func:`stop` sends ``signal`` (SIGTERM by default) to the handle's whole
process group and returns at once with a ``concurrent.futures.Future``. If
the group leader is still alive after ``grace`` seconds, the group gets
SIGKILL. When the leader has exited, whatever is left of its group (children
that ignored the signal, or that the leader left behind) gets SIGKILL at
once: a service's process group lives and dies with its leader, so a
restarted service never finds its port held by an orphan. The future then
resolves with the leader's :class:`~.handle.ExitStatus`.

The grace timer runs on the given :class:`dsmt.clock.Clock` (the real clock's
timer thread by default). A group that is already gone is not an error.
"""

from __future__ import annotations

import os
import signal as _signal
from concurrent.futures import Future

from dsmt.clock import Clock, system_clock

from actors.process.handle import ExitStatus, ProcessHandle


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; False if the group no longer exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False


def stop(
    handle: ProcessHandle,
    signal: int = _signal.SIGTERM,
    grace: float | None = 10.0,
    *,
    clock: Clock | None = None,
) -> Future[ExitStatus]:
    """Stop ``handle``'s group (see the module docstring); ``grace=None`` never escalates."""
    clock = clock or system_clock()
    stopped: Future[ExitStatus] = Future()
    timer = None
    if handle.alive:
        signal_group(handle.pgid, signal)
        if handle.alive and grace is not None:
            timer = clock.call_later(
                grace, lambda: handle.alive and signal_group(handle.pgid, _signal.SIGKILL))

    def leader_exited(done: Future[ExitStatus]) -> None:
        if timer is not None:
            timer.cancel()
        signal_group(handle.pgid, _signal.SIGKILL)
        stopped.set_result(done.result())

    handle.exited.add_done_callback(leader_exited)
    return stopped
