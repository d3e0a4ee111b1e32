"""Fakes of the OS seam, for testing process state machines without processes.

:class:`FakeOs` implements :class:`~.seam.ProcessOs`: ``spawn`` hands out
handles with made-up pids and records them, ``signal`` records
``(pid, signal)`` pairs, and the test decides when a process exits
(:meth:`FakeOs.exit`) and what a health check says
(:meth:`FakeMonitor.report`). Everything runs in the test's thread; pair it
with :class:`dsmt.testing.FakeClock`.
"""

from __future__ import annotations

import itertools
import os
import signal as _signal
from typing import Callable

import psutil

from actors.process.handle import ExitStatus, ProcessHandle, ProcessRecord
from actors.process.health import Check, HealthPolicy, HealthResult
from actors.process.rotating import LogSpec
from actors.process.spawn import Command


class FakeMonitor:
    """A health monitor whose results the test reports by hand."""

    def __init__(self, check: Check, policy: HealthPolicy,
                 on_result: Callable[[HealthResult], None]) -> None:
        self.check = check
        self.policy = policy
        self.on_result = on_result
        self.started: float | None = None
        self.stopped = False
        self._failures = 0
        self._healthy = True

    def start(self, delay: float = 0.0) -> None:
        self.started = delay

    def stop(self) -> None:
        self.stopped = True

    def report(self, ok: bool, detail: str = "") -> None:
        """Deliver one result, with the threshold bookkeeping of the real monitor."""
        self._failures = 0 if ok else self._failures + 1
        healthy = ok or (self._healthy and self._failures < self.policy.threshold)
        changed, self._healthy = healthy != self._healthy, healthy
        self.on_result(HealthResult(ok, detail or ("ok" if ok else "failed"),
                                    self._failures, healthy, changed, 0.0))


class FakeOs:
    """A :class:`~.seam.ProcessOs` whose processes exist only in this object."""

    def __init__(self, first_pid: int = 1000) -> None:
        self.spawned: list[ProcessHandle] = []
        self.signals: list[tuple[int, int]] = []
        self.monitors: list[FakeMonitor] = []
        self.spawn_errors: list[OSError] = []  # raised by the next spawns, in order
        self.live: dict[int, ProcessRecord] = {}  # adoptable records, by pid
        self.exit_on: set[int] = set()  # signals that end the signalled process at once
        self._pids = itertools.count(first_pid)

    @property
    def last(self) -> ProcessHandle:
        return self.spawned[-1]

    def spawn(self, command: Command, logs: LogSpec | None) -> ProcessHandle:
        if self.spawn_errors:
            raise self.spawn_errors.pop(0)
        pid = next(self._pids)
        handle = ProcessHandle(pid=pid, pgid=pid, create_time=float(pid), started=0.0,
                               argv=command.argv)
        self.spawned.append(handle)
        return handle

    def signal(self, handle: ProcessHandle, sig: int) -> None:
        self.signals.append((handle.pid, sig))
        if sig in self.exit_on and not handle.exited.done():
            self.exit(handle, signal=sig)

    def adopt(self, record: ProcessRecord, logs: LogSpec | None = None) -> ProcessHandle | None:
        known = self.live.get(record.pid)
        if known is None or known.create_time != record.create_time:
            return None
        handle = ProcessHandle(pid=record.pid, pgid=record.pgid or record.pid,
                               create_time=record.create_time, started=0.0, adopted=True)
        self.spawned.append(handle)
        return handle

    def monitor(self, check: Check, policy: HealthPolicy,
                on_result: Callable[[HealthResult], None]) -> FakeMonitor:
        monitor = FakeMonitor(check, policy, on_result)
        self.monitors.append(monitor)
        return monitor

    def exit(self, handle: ProcessHandle | None = None, code: int | None = 0,
             signal: int | None = None) -> None:  # noqa: A002 - mirrors ExitStatus
        """End ``handle`` (default: the last spawned) with ``code`` or ``signal``."""
        handle = handle or self.last
        status = ExitStatus(handle.pid, None if signal is not None else code, signal)
        handle.exited.set_result(status)


class GroupReaper:
    """Tracks the process groups a test started and makes sure none outlives it.

    :meth:`survivors` lists the live (non-zombie) members of every tracked
    group; :meth:`kill_all` SIGKILLs every tracked group. A fixture calls
    ``survivors()`` at teardown to fail a test that leaks processes, and
    ``kill_all()`` in any case.
    """

    def __init__(self) -> None:
        self.pgids: set[int] = set()

    def track(self, handle_or_pgid: ProcessHandle | int) -> ProcessHandle | int:
        pgid = handle_or_pgid if isinstance(handle_or_pgid, int) else handle_or_pgid.pgid
        self.pgids.add(pgid)
        return handle_or_pgid

    def survivors(self) -> list[int]:
        found = []
        for pid in psutil.pids():
            try:
                if os.getpgid(pid) in self.pgids and \
                        psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    found.append(pid)
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        return found

    def kill_all(self) -> None:
        for pgid in self.pgids:
            try:
                os.killpg(pgid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
