"""Re-adopts a live process from the journal, refusing one whose pid was reused.

A node agent that restarts finds its services still running (they are in
their own sessions, so they survived it). :func:`adopt` takes the journal's
:class:`~.handle.ProcessRecord` and returns a watched
:class:`~.handle.ProcessHandle` only if the pid is alive, is not a zombie,
still has the recorded start time (psutil ``create_time``: a different
process that got the same pid has a different one) and, if recorded, the
same process group. Otherwise it returns None and the caller starts the
service afresh.

The pidfd is opened *before* the checks, so the process that passed them is
the one being watched even if it dies and its pid is reused right after.
An adopted process is not our child: its exit is seen at once, its exit
status is unknown. Its output already goes straight into its log files
(see :mod:`.spawn`); given its :class:`~.rotating.LogSpec`, those are
rotated again for as long as it lives.
"""

from __future__ import annotations

import os
import time

import psutil

from actors.process.handle import ProcessHandle, ProcessRecord
from actors.process.rotating import LogRotator, LogSpec, default_rotator
from actors.process.spawn import rotate_while_alive
from actors.process.watcher import ExitWatcher, default_watcher

# psutil's create_time has clock-tick resolution (10 ms); pid reuse within one tick is impossible.
CREATE_TIME_TOLERANCE = 0.005


def verify(record: ProcessRecord) -> str | None:
    """None if ``record`` names a live process; otherwise why it does not."""
    try:
        proc = psutil.Process(record.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return f"pid {record.pid} has exited (zombie)"
        if abs(proc.create_time() - record.create_time) > CREATE_TIME_TOLERANCE:
            return f"pid {record.pid} was reused by another process"
        if record.pgid is not None and os.getpgid(record.pid) != record.pgid:
            return f"pid {record.pid} is no longer in process group {record.pgid}"
    except (psutil.NoSuchProcess, ProcessLookupError):
        return f"pid {record.pid} is gone"
    return None


def adopt(record: ProcessRecord, logs: LogSpec | None = None, *,
          watcher: ExitWatcher | None = None,
          rotator: LogRotator | None = None) -> ProcessHandle | None:
    """A watched handle for the journaled process, or None if it is gone or not the same."""
    watcher = watcher or default_watcher()
    try:
        pidfd = watcher.open_pidfd(record.pid)
    except ProcessLookupError:
        return None
    if verify(record) is not None:
        if pidfd is not None:
            os.close(pidfd)
        return None
    try:
        pgid = os.getpgid(record.pid)
    except ProcessLookupError:
        pgid = record.pgid or record.pid
    handle = ProcessHandle(
        pid=record.pid,
        pgid=pgid,
        create_time=record.create_time,
        started=time.monotonic(),
        adopted=True,
    )
    if logs is not None:
        rotate_while_alive(handle, logs, rotator or default_rotator())
    watcher.watch(handle, pidfd)
    return handle
