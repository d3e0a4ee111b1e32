"""The OS seam of the process state machine: every effect on real processes.

:class:`~.machine.ProcessMachine` touches the operating system only through
a :class:`ProcessOs` (and time only through a :class:`dsmt.clock.Clock`), so
it is unit-tested with :class:`~.testing.FakeOs` and
:class:`dsmt.testing.FakeClock`, without processes or real time. :class:`RealOs`
is the production implementation on top of :mod:`.spawn`, :mod:`.watcher`,
:mod:`.adopt` and :mod:`.health`.
"""

from __future__ import annotations

from typing import Callable, Protocol

from dsmt.clock import Clock

from actors.process.adopt import adopt
from actors.process.handle import ProcessHandle, ProcessRecord
from actors.process.health import Check, HealthMonitor, HealthPolicy, HealthResult
from actors.process.rotating import LogRotator, LogSpec
from actors.process.spawn import Command, spawn
from actors.process.stop import signal_group
from actors.process.watcher import ExitWatcher


class Monitor(Protocol):
    def start(self, delay: float = 0.0) -> None: ...

    def stop(self) -> None: ...


class ProcessOs(Protocol):
    def spawn(self, command: Command, logs: LogSpec | None) -> ProcessHandle:
        """Start ``command``; the handle's ``exited`` future resolves on exit. Raises OSError."""
        ...

    def signal(self, handle: ProcessHandle, sig: int) -> None:
        """Send ``sig`` to the handle's process group; a gone group is not an error."""
        ...

    def adopt(self, record: ProcessRecord, logs: LogSpec | None) -> ProcessHandle | None:
        """A watched handle for a journaled live process, or None (gone, or pid reused)."""
        ...

    def monitor(self, check: Check, policy: HealthPolicy,
                on_result: Callable[[HealthResult], None]) -> Monitor:
        """A health monitor, not yet started."""
        ...


class RealOs:
    """Real processes: one exit watcher and one log rotator (process-wide ones by default)."""

    def __init__(self, clock: Clock | None = None, watcher: ExitWatcher | None = None,
                 rotator: LogRotator | None = None) -> None:
        self._clock = clock
        self._watcher = watcher
        self._rotator = rotator

    def spawn(self, command: Command, logs: LogSpec | None) -> ProcessHandle:
        return spawn(command, logs, watcher=self._watcher, rotator=self._rotator)

    def signal(self, handle: ProcessHandle, sig: int) -> None:
        signal_group(handle.pgid, sig)

    def adopt(self, record: ProcessRecord, logs: LogSpec | None) -> ProcessHandle | None:
        return adopt(record, logs, watcher=self._watcher, rotator=self._rotator)

    def monitor(self, check: Check, policy: HealthPolicy,
                on_result: Callable[[HealthResult], None]) -> HealthMonitor:
        return HealthMonitor(check, policy, on_result, clock=self._clock)
