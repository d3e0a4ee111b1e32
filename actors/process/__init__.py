"""Process actors: run a service's OS process, watch it, restart it, stop it.

The OS layer (no actors): :func:`spawn` a :class:`Command` in its own
session with its output straight into log files (:class:`LogSpec`) that a
:class:`LogRotator` rotates by size (copytruncate); exits seen at
once by the :class:`ExitWatcher` (pidfds); :func:`stop` a group with signal →
grace → SIGKILL; health checks (:class:`TcpCheck`, :class:`HttpCheck`,
:class:`CommandCheck`) run by a :class:`HealthMonitor`; :func:`adopt` a
journaled process after an agent restart.

On top: :class:`ProcessMachine`, the supervisord-style state machine
(:class:`ProcessPolicy`), driven through the :class:`ProcessOs` seam, and
the :class:`ProcessActor` (``actors.process.actor``) that runs it as a
child of an application supervisor.
"""

from actors.process.adopt import adopt, verify
from actors.process.handle import ExitStatus, ProcessHandle, ProcessRecord
from actors.process.health import (
    CommandCheck,
    HealthMonitor,
    HealthPolicy,
    HealthResult,
    HttpCheck,
    TcpCheck,
)
from actors.process.machine import ProcessMachine
from actors.process.policy import ALWAYS, NEVER, UNEXPECTED, HealthSpec, ProcessPolicy
from actors.process.rotating import LogRotator, LogSpec, copytruncate, default_rotator
from actors.process.seam import ProcessOs, RealOs
from actors.process.spawn import Command, spawn
from actors.process.stop import signal_group, stop
from actors.process.watcher import ExitWatcher, default_watcher

__all__ = [
    "ALWAYS", "NEVER", "UNEXPECTED",
    "Command", "CommandCheck", "ExitStatus", "ExitWatcher", "HealthMonitor", "HealthPolicy",
    "HealthResult", "HealthSpec", "HttpCheck", "LogRotator", "LogSpec", "ProcessHandle",
    "ProcessMachine", "ProcessOs", "ProcessPolicy", "ProcessRecord", "RealOs", "TcpCheck",
    "adopt", "copytruncate", "default_rotator", "default_watcher", "signal_group", "spawn",
    "stop", "verify",
]
