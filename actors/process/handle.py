"""What DSMT knows about one running OS process: its handle, journal record and exit.

- :class:`ProcessHandle` is returned by :func:`~.spawn.spawn` and
  :func:`~.adopt.adopt`: pid, process group, start time, and ``exited``, a
  ``concurrent.futures.Future`` that the exit watcher resolves with an
  :class:`ExitStatus` the moment the process ends.
- :class:`ProcessRecord` is what goes into the node's journal so that a
  restarted node agent can re-adopt the process: (pid, create_time) names a
  process uniquely even when the kernel reuses pids, because psutil's
  ``create_time`` of a new process with the same pid differs.
- :class:`ExitStatus` is how a process ended: an exit code, a signal, or
  neither when the process was adopted (only its parent can read the status).
"""

from __future__ import annotations

import signal as _signal
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended; ``code`` and ``signal`` are both None when unknown (adopted)."""

    pid: int
    code: int | None = None
    signal: int | None = None

    @property
    def known(self) -> bool:
        return self.code is not None or self.signal is not None

    @property
    def returncode(self) -> int | None:
        """As ``subprocess``: the exit code, or minus the signal number; None if unknown."""
        if self.signal is not None:
            return -self.signal
        return self.code

    def __str__(self) -> str:
        if self.signal is not None:
            try:
                return f"killed by {_signal.Signals(self.signal).name}"
            except ValueError:
                return f"killed by signal {self.signal}"
        if self.code is not None:
            return f"exit {self.code}"
        return "exited (status unknown: adopted process)"


@dataclass(frozen=True)
class ProcessRecord:
    """The journal entry that lets a restarted agent re-adopt a live process."""

    pid: int
    create_time: float
    pgid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "create_time": self.create_time, "pgid": self.pgid}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessRecord:
        return cls(int(data["pid"]), float(data["create_time"]),
                   None if data.get("pgid") is None else int(data["pgid"]))


@dataclass(eq=False)
class ProcessHandle:
    """A started or adopted process; ``exited`` resolves with its :class:`ExitStatus`.

    ``adopted`` is True when the process is not our child (re-adopted from the
    journal): its exit is seen, its status is not. ``popen`` keeps the
    ``subprocess.Popen`` of our own children alive so ``subprocess`` never
    reaps them behind the watcher's back.
    """

    pid: int
    pgid: int
    create_time: float
    started: float
    adopted: bool = False
    argv: tuple[str, ...] = ()
    exited: Future[ExitStatus] = field(default_factory=Future, repr=False)
    popen: Any = field(default=None, repr=False)

    @property
    def record(self) -> ProcessRecord:
        return ProcessRecord(self.pid, self.create_time, self.pgid)

    @property
    def alive(self) -> bool:
        """False once the watcher has seen the process exit."""
        return not self.exited.done()
